// For runtimes that need the module passed in: import the .wasm your
// runtime's way (`lexecon/lexecon.wasm` in the exports map), then
//   import { init, Lexecon } from "lexecon/init";
//   await init(wasmModuleOrBytesOrResponse);
import { initError, initWasm, initWasmSync } from "../wasm.js";

export * from "../api.js";
export { fileStorage } from "../file-storage-unavailable.js";

/**
 * Instantiates the engine from a WebAssembly.Module, bytes, a Response, a
 * URL or a promise of one. Idempotent.
 * @param {unknown} input
 */
export function init(input) {
  return initWasm(input);
}

/**
 * Instantiates the engine synchronously from a WebAssembly.Module or bytes.
 * @param {WebAssembly.Module | BufferSource} module
 */
export function initSync(module) {
  try {
    initWasmSync(module);
  } catch (e) {
    throw initError(e);
  }
}
