// What the `node` entry exports as `fileStorage`: the same adapter, with
// the implementation (and node:fs/promises) loaded on first use, so that
// `import "lexecon"` stays fast for programs that never touch a file.
import { LexeconConfigError } from "./errors.js";
import { OPENED, readOnlyOption } from "./storage.js";

/** @type {Promise<typeof import("./file-storage.js")> | undefined} */
let module;

/**
 * @param {string} path
 * @param {{ readOnly?: boolean }} [options]
 * @returns {import("../types/file.js").FileStorage}
 */
export function fileStorage(path, options = {}) {
  if (typeof path !== "string" || path === "") throw new LexeconConfigError("fileStorage needs a file path");
  readOnlyOption(options);
  // A relative path is relative to the working directory now, as with `lexecon/file`.
  const cwd = process.cwd();
  /** @type {Promise<import("../types/file.js").FileStorage> | undefined} */
  let inner;
  let used = false;
  const impl = () => (inner ??= (module ??= import("./file-storage.js")).then((m) => m.fileStorage(path, options, cwd)));
  const use = () => {
    used = true;
    return impl();
  };
  return {
    path,
    [OPENED]: () => used,
    open: () => use().then((s) => s.open()),
    length: () => use().then((s) => s.length()),
    get: (index) => use().then((s) => s.get(index)),
    getRange: (start, end) => use().then((s) => s.getRange(start, end)),
    find: (entryHash) => use().then((s) => s.find(entryHash)),
    append: (bytes, meta) => use().then((s) => s.append(bytes, meta)),
    // Closing one never used still marks it closed, as `lexecon/file`'s does.
    close: () => impl().then((s) => s.close()),
  };
}
