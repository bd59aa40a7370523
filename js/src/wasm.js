// The one place that talks to wasm-bindgen's generated glue. The entry
// points (src/entry/*.js) differ only in how they hand it the WebAssembly
// module; everything else imports `engine()` from here.
import * as glue from "../dist/wasm/lexecon_js.js";
import { LexeconError } from "./errors.js";

let ready = false;

/** An export only Lexecon's engine has: tells its module from any other. */
const ENGINE_EXPORT = "wasmengine_prepareDecisions";

/**
 * Instantiates the engine synchronously from a compiled module or bytes
 * (Node, Workers, Vercel Edge). Idempotent.
 * @param {WebAssembly.Module | BufferSource} module
 */
export function initWasmSync(module) {
  if (!ready) {
    if (!(module instanceof WebAssembly.Module) && !isForeignModule(module)) {
      module = new WebAssembly.Module(/** @type {BufferSource} */ (module));
    }
    // The glue would take any module and fail only at the first call.
    if (!WebAssembly.Module.exports(module).some((e) => e.name === ENGINE_EXPORT)) {
      throw new LexeconError(`the WebAssembly module is not Lexecon's engine (it has no \`${ENGINE_EXPORT}\` export)`, {
        code: "wasm_init",
      });
    }
    if (isForeignModule(module)) {
      // A module compiled in another realm (Vercel's edge-runtime and
      // Next.js's edge sandbox compile outside the function's vm context):
      // the glue's `instanceof WebAssembly.Module` says no and it would try
      // to compile the module as bytes. Instantiating it is fine; only the
      // check fails, so it sees this realm's prototype for the call.
      const proto = Object.getPrototypeOf(module);
      Object.setPrototypeOf(module, WebAssembly.Module.prototype);
      try {
        glue.initSync({ module });
      } finally {
        Object.setPrototypeOf(module, proto);
      }
    } else {
      glue.initSync({ module });
    }
    ready = true;
  }
}

/** A WebAssembly.Module that is not this realm's. */
function isForeignModule(value) {
  return !(value instanceof WebAssembly.Module) && Object.prototype.toString.call(value) === "[object WebAssembly.Module]";
}

/**
 * Instantiates the engine from anything `WebAssembly.instantiate` or
 * `fetch` accepts (a module, bytes, a Response, a URL, or a promise of one).
 * @param {unknown} input
 */
export async function initWasm(input) {
  if (!ready) {
    try {
      // Compiled here and checked by initWasmSync before the glue sees it:
      // the glue keeps the first instance it makes, so a foreign module that
      // got that far would stay behind a later, correct init.
      initWasmSync(await compile(input));
    } catch (e) {
      throw initError(e);
    }
  }
}

/**
 * A compiled module from a module, bytes, a Response, a URL or a Request
 * (or a promise of one), as `WebAssembly.instantiateStreaming` would take.
 * @param {unknown} input
 * @returns {Promise<WebAssembly.Module>}
 */
async function compile(input) {
  let value = await input;
  if (value instanceof WebAssembly.Module || isForeignModule(value)) return /** @type {WebAssembly.Module} */ (value);
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return WebAssembly.compile(/** @type {BufferSource} */ (value));
  if (typeof value === "string" || value instanceof URL || (typeof Request === "function" && value instanceof Request)) {
    value = await fetch(/** @type {any} */ (value));
  }
  if (typeof Response === "function" && value instanceof Response) {
    if (!value.ok) throw new Error(`fetching the module answered ${value.status} ${value.statusText}`.trim());
    const type = value.headers.get("content-type") ?? "";
    if (typeof WebAssembly.compileStreaming === "function" && type.split(";")[0].trim() === "application/wasm") {
      return WebAssembly.compileStreaming(value);
    }
    return WebAssembly.compile(await value.arrayBuffer());
  }
  throw new TypeError("init takes lexecon/lexecon.wasm as a WebAssembly.Module, its bytes, a Response, a URL or a Request");
}

/**
 * What `init`/`initSync` throw when the engine cannot be instantiated from
 * what they were given (not Lexecon's module, bytes that are not wasm, a
 * failed fetch): a LexeconError with code `wasm_init`, the cause attached.
 * @param {unknown} e
 */
export function initError(e) {
  if (e instanceof LexeconError) return e;
  const why = /** @type {any} */ (e)?.message ?? String(e);
  return new LexeconError(
    `cannot instantiate the Lexecon engine from what init was given (lexecon/lexecon.wasm as a module, its bytes, or a Response of it): ${why}`,
    { code: "wasm_init", cause: e },
  );
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
