// `fileStorage` outside Node: there is no file system to append to.
import { LexeconConfigError } from "./errors.js";

/** @returns {never} */
export function fileStorage() {
  throw new LexeconConfigError(
    "fileStorage needs Node's file system: in Node, import it from `lexecon/file` (or `lexecon`); " +
      "in this runtime pass an async storage adapter ({ append(bytes), get(index), length() }) " +
      "backed by your platform's store",
  );
}
