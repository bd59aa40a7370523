export * from "./index.js";

/**
 * Instantiates the engine from a WebAssembly.Module, bytes, a Response, a URL
 * or a promise of one. Rejects with a `LexeconError` (code `wasm_init`) when
 * that is not Lexecon's wasm or cannot be fetched.
 */
export declare function init(
  input: WebAssembly.Module | BufferSource | Response | URL | string | Promise<Response | WebAssembly.Module | BufferSource>,
): Promise<void>;

/** Instantiates the engine synchronously from a WebAssembly.Module or bytes (throws as `init` rejects). */
export declare function initSync(module: WebAssembly.Module | BufferSource): void;
