// Node (and Bun, and Deno with the `node` condition): read the .wasm next
// to the glue and instantiate it synchronously at import (a few ms).
// Node loads this through lib/entry/node.js (scripts/bundle-node.js).
import { initWasmSync } from "../wasm.js";

// `import … from "node:fs"` builds node:fs's ES module facade, which reads
// every export, lazy ones included (fs.ReadStream loads the streams
// modules): about 1 ms of a ~10 ms import. `process.getBuiltinModule`
// (Node >= 20.16) returns the object as it is, at no cost; older Node gets
// it from `require`, which costs loading `node:module` (~0.9 ms in all).
const { readFileSync } =
  globalThis.process?.getBuiltinModule?.("node:fs") ??
  (await import("node:module")).createRequire(import.meta.url)("node:fs");

// Node 18 has Web Crypto but not as a global; the engine's randomness (ids,
// generated keys) uses globalThis.crypto.getRandomValues. Checked without
// touching the (lazy) global, so Node >= 19 loads nothing extra.
if (!Object.getOwnPropertyDescriptor(globalThis, "crypto")) {
  const { webcrypto } = await import("node:crypto");
  Object.defineProperty(globalThis, "crypto", { value: webcrypto, configurable: true, writable: true, enumerable: false });
}

initWasmSync(new WebAssembly.Module(readFileSync(new URL("../../dist/wasm/lexecon_js_bg.wasm", import.meta.url))));

export * from "../api.js";
export { fileStorage } from "../file-storage-lazy.js";
