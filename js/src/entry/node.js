// Node (and Bun, and Deno with the `node` condition) when the package is
// imported: read the .wasm (src/wasm-file.js says where it looks) and
// instantiate it synchronously at import (a few ms). `require("lexecon")`
// takes src/entry/node-require.js instead. Node loads this through
// lib/entry/node.js (scripts/bundle-node.js).
import { initWasmSync } from "../wasm.js";
import { readWasmFile } from "../wasm-file.js";

// `import … from "node:fs"` builds node:fs's ES module facade, which reads
// every export, lazy ones included (fs.ReadStream loads the streams
// modules): about 1 ms of a ~10 ms import. `process.getBuiltinModule`
// (Node >= 20.16) returns the object as it is, at no cost; older Node gets
// built-ins from `require`, which costs loading `node:module` (~0.9 ms in all).
const requireBuiltin = globalThis.process?.getBuiltinModule
  ? undefined
  : (await import("node:module")).createRequire(import.meta.url);
const builtin = (/** @type {string} */ name) => (requireBuiltin ? requireBuiltin(name) : process.getBuiltinModule(name));

// Node 18 has Web Crypto but not as a global; the engine's randomness (ids,
// generated keys) uses globalThis.crypto.getRandomValues. Checked without
// touching the (lazy) global, so Node >= 19 loads nothing extra.
if (!Object.getOwnPropertyDescriptor(globalThis, "crypto")) {
  const { webcrypto } = await import("node:crypto");
  Object.defineProperty(globalThis, "crypto", { value: webcrypto, configurable: true, writable: true, enumerable: false });
}

// The literal `new URL("…", import.meta.url)` is what file tracers follow (src/wasm-file.js).
initWasmSync(
  new WebAssembly.Module(readWasmFile(builtin, new URL("../../dist/wasm/lexecon_js_bg.wasm", import.meta.url), import.meta.url)),
);

export * from "../api.js";
export { fileStorage } from "../file-storage-lazy.js";
