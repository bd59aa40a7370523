// Cloudflare Workers (wrangler resolves the `workerd` condition): importing
// a .wasm file yields a compiled WebAssembly.Module, the only way Workers
// allow WebAssembly (no compiling from bytes at run time).
import wasmModule from "../../dist/wasm/lexecon_js_bg.wasm";
import { initWasmSync } from "../wasm.js";

initWasmSync(wasmModule);

export * from "../api.js";
export { fileStorage } from "../file-storage-unavailable.js";
