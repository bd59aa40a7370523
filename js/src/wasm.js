// The one place that talks to wasm-bindgen's generated glue. The entry
// points (src/entry/*.js) differ only in how they hand it the WebAssembly
// module; everything else imports `engine()` from here.
import initAsync, * as glue from "../dist/wasm/lexecon_js.js";
import { LexeconError } from "./errors.js";

let ready = false;

/**
 * Instantiates the engine synchronously from a compiled module or bytes
 * (Node, Workers, Vercel Edge). Idempotent.
 * @param {WebAssembly.Module | BufferSource} module
 */
export function initWasmSync(module) {
  if (!ready) {
    glue.initSync({ module });
    ready = true;
  }
}

/**
 * Instantiates the engine from anything `WebAssembly.instantiate` or
 * `fetch` accepts (a module, bytes, a Response, a URL, or a promise of one).
 * @param {unknown} input
 */
export async function initWasm(input) {
  if (!ready) {
    if (input instanceof WebAssembly.Module || ArrayBuffer.isView(input) || input instanceof ArrayBuffer) {
      initWasmSync(/** @type {any} */ (input));
    } else {
      await initAsync({ module_or_path: /** @type {any} */ (input) });
      ready = true;
    }
  }
}

/** Whether the engine has been instantiated. */
export function isInitialized() {
  return ready;
}

/** The generated bindings; throws if the module was never instantiated. */
export function engine() {
  if (!ready) {
    throw new LexeconError(
      "the Lexecon WebAssembly module is not initialised: call `await init(module)` from `lexecon/init` first",
      { code: "not_initialized" },
    );
  }
  return glue;
}
