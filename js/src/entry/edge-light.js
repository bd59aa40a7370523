// Vercel Edge Functions / Next.js middleware (the `edge-light` condition):
// the `?module` suffix makes the bundler hand over a compiled
// WebAssembly.Module (compiling from bytes at run time is not allowed).
import wasmModule from "../../dist/wasm/lexecon_js_bg.wasm?module";
import { initWasmSync } from "../wasm.js";

initWasmSync(wasmModule);

export * from "../api.js";
export { fileStorage } from "../file-storage-unavailable.js";
