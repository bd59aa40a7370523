// What the `node` entry exports as `fileStorage`: the same adapter, with
// the implementation (and node:fs/promises) loaded on first use, so that
// `import "lexecon"` stays fast for programs that never touch a file.
import { LexeconConfigError } from "./errors.js";

/** @type {Promise<typeof import("./file-storage.js")> | undefined} */
let module;

/**
 * @param {string} path
 * @param {{ readOnly?: boolean }} [options]
 * @returns {import("../types/file.js").FileStorage}
 */
export function fileStorage(path, options = {}) {
  if (typeof path !== "string" || path === "") throw new LexeconConfigError("fileStorage needs a file path");
  /** @type {Promise<import("../types/file.js").FileStorage> | undefined} */
  let inner;
  const impl = () => (inner ??= (module ??= import("./file-storage.js")).then((m) => m.fileStorage(path, options)));
  return {
    path,
    open: () => impl().then((s) => s.open()),
    length: () => impl().then((s) => s.length()),
    get: (index) => impl().then((s) => s.get(index)),
    getRange: (start, end) => impl().then((s) => s.getRange(start, end)),
    find: (entryHash) => impl().then((s) => s.find(entryHash)),
    append: (bytes, meta) => impl().then((s) => s.append(bytes, meta)),
    close: () => (inner ? inner.then((s) => s.close()) : Promise.resolve()),
  };
}
