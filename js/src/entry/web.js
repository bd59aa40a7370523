// Browsers, Deno and bundlers that understand `new URL(…, import.meta.url)`:
// fetch the .wasm next to the glue (top-level await).
import { initWasm } from "../wasm.js";

await initWasm(new URL("../../dist/wasm/lexecon_js_bg.wasm", import.meta.url));

export * from "../api.js";
export { fileStorage } from "../file-storage-unavailable.js";
