// `require("lexecon")` (the `require` condition). Node >= 20.19 and 22.12
// load an ES module through `require` only if nothing in its graph awaits at
// top level, so this is src/entry/node.js without the top-level awaits that
// serve older Node (which cannot `require` an ES module at all; there,
// `await import("lexecon")` works). Everything comes through
// lexecon/init's build, as imported programs get it: a program that both
// requires and imports the package has one engine and one set of classes.
// (scripts/bundle-node.js keeps ./init.js an import of lib/entry/init.js.)
import { initSync } from "./init.js";
import { readWasmFile } from "../wasm-file.js";

// The literal `new URL("…", import.meta.url)` is what file tracers follow (src/wasm-file.js).
const packaged = new URL("../../dist/wasm/lexecon_js_bg.wasm", import.meta.url);
initSync(new WebAssembly.Module(readWasmFile((name) => process.getBuiltinModule(name), packaged, import.meta.url)));

// What `import "lexecon"` exports (node-build.test.js compares the lists).
export {
  GENESIS_HASH,
  Lexecon,
  LexeconClient,
  LexeconConfigError,
  LexeconDeniedError,
  LexeconError,
  LexeconHttpError,
  LexeconLedgerError,
  LexeconNetworkError,
  LexeconPolicyError,
  LexeconRequestError,
  LexeconStorageError,
  LexeconTimeoutError,
  governed,
  isInitialized,
  memoryStorage,
  verifyToken,
} from "./init.js";
export { fileStorage } from "../file-storage-lazy.js";
