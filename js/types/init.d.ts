export * from "./index.js";

/** Instantiates the engine from a WebAssembly.Module, bytes, a Response, a URL or a promise of one. */
export declare function init(
  input: WebAssembly.Module | BufferSource | Response | URL | string | Promise<Response | WebAssembly.Module | BufferSource>,
): Promise<void>;

/** Instantiates the engine synchronously from a WebAssembly.Module or bytes. */
export declare function initSync(module: WebAssembly.Module | BufferSource): void;
