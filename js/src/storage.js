// Storage adapters and the helpers they share. An adapter is
//   { append(bytes, meta) → index, get(index) → bytes | null, length() → n,
//     find?(entryHash) → index | null, getRange?(start, end) → bytes[] }
// where every method may return a promise. `append` must be durable when it
// resolves: the decision is acknowledged only after that.

import { LexeconConfigError, LexeconStorageError } from "./errors.js";
import { knownOptions } from "./options.js";

const encoder = new TextEncoder();

/**
 * On the package's adapters that open on first use (`fileStorage`): a
 * function that says whether anything has used (and so opened) it yet.
 * `Lexecon.create` closes such an adapter again when it fails after its
 * own calls opened it, so the file's lock is not left held by an adapter
 * the caller may have no other reference to.
 */
export const OPENED = Symbol.for("lexecon.storage.opened");

/**
 * The package's own adapters whose `append` copies the bytes before it
 * returns (synchronously): Lexecon hands them a view into WebAssembly
 * memory, valid only during the call, instead of a fresh copy. Each is
 * recorded with its own `append`: a wrapper (`{ ...memoryStorage(), append:
 * … }`) or an adapter whose `append` was replaced in place gets bytes it may
 * keep.
 * @type {WeakMap<object, Function>}
 */
const copyingAdapters = new WeakMap();

/**
 * Whether `storage` copies appended bytes before `append` returns: asked
 * at every append, since `append` may be replaced at any time.
 * @param {any} storage
 */
export function copiesOnAppend(storage) {
  return copyingAdapters.get(storage) === storage.append;
}

/** Size of the buffers memoryStorage copies entries into. */
const MEMORY_CHUNK = 64 * 1024;
const decoder = new TextDecoder();

// Every stored entry starts with `{"entry_hash":"<64 hex>","index":<digits>,`
// (canonical JSON sorts `entry_hash` first): the head can be read without
// parsing the entry.
const HEAD = '{"entry_hash":"';
const INDEX_KEY = '","index":';

/**
 * Reads `entry_hash` and `index` from an entry's stored bytes.
 * @param {Uint8Array} bytes
 * @returns {{ entry_hash: string, index: number } | null}
 */
export function entryHead(bytes) {
  const text = decoder.decode(bytes.subarray(0, 128));
  if (!text.startsWith(HEAD)) return null;
  const hash = text.slice(HEAD.length, HEAD.length + 64);
  if (!/^[0-9a-f]{64}$/.test(hash)) return null;
  const rest = text.slice(HEAD.length + 64);
  if (!rest.startsWith(INDEX_KEY)) return null;
  const digits = /^\d+/.exec(rest.slice(INDEX_KEY.length));
  if (!digits) return null;
  const index = Number(digits[0]);
  return Number.isSafeInteger(index) ? { entry_hash: hash, index } : null;
}

/**
 * Accepts what an adapter may hand back for an entry: bytes, an
 * ArrayBuffer, or the entry's JSON text (convenient for KV stores).
 * @param {unknown} value
 * @returns {Uint8Array}
 */
export function toBytes(value) {
  if (value instanceof Uint8Array) return value;
  if (typeof value === "string") return encoder.encode(value);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw new LexeconStorageError(`storage returned ${describe(value)} for an entry; expected bytes or the entry's JSON text`);
}

/**
 * An index or length an adapter returned, as a safe integer (or NaN).
 * @param {unknown} value
 */
export function toIndex(value) {
  if (typeof value === "bigint") return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= 0n ? Number(value) : NaN;
  if (typeof value === "number") return Number.isSafeInteger(value) && value >= 0 ? value : NaN;
  if (typeof value === "string" && /^\d+$/.test(value)) return toIndex(Number(value));
  return NaN;
}

function describe(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? `a ${value?.constructor?.name ?? "object"}` : `a ${typeof value}`;
}

/**
 * Checks that `storage` has the adapter methods.
 * @param {unknown} storage
 */
export function checkAdapter(storage) {
  const s = /** @type {any} */ (storage);
  for (const method of ["append", "get", "length"]) {
    if (!s || typeof s[method] !== "function") {
      throw new LexeconConfigError(`storage must have an \`${method}\` method ({ append(bytes), get(index), length() })`);
    }
  }
}

/**
 * The in-memory ledger: for tests, short-lived workers, and embedders that
 * persist elsewhere. Everything is lost with the process.
 *
 * It keeps no JavaScript object per entry: entries are copied into shared
 * 64 KiB buffers (one allocation per ~50 decisions; an entry over 16 KiB gets
 * a buffer of its own) and located through a typed-array table, and the
 * index by entry hash is built the first time `find` is called. A long-lived
 * node's garbage-collected heap does not grow with its ledger.
 * @returns {import("../types/index.js").MemoryStorage}
 */
export function memoryStorage() {
  /** @type {Uint8Array[]} */
  const buffers = [];
  /** Which of `buffers` small entries are copied into (-1: none yet), and how much of it is used. */
  let chunkIndex = -1;
  let used = 0;
  /** Entry i is `buffers[table[3i]]`, from `table[3i + 1]`, `table[3i + 2]` bytes long. */
  let table = new Uint32Array(3 * 1024);
  let count = 0;
  /** Entry hash → index; null until `find` first needs it. @type {Map<string, number> | null} */
  let byHash = null;

  /** @param {Uint8Array} src */
  const keep = (src) => {
    let buffer;
    let at = 0;
    if (src.length > MEMORY_CHUNK / 4) {
      buffer = buffers.push(src.slice()) - 1;
    } else {
      if (chunkIndex < 0 || src.length > MEMORY_CHUNK - used) {
        chunkIndex = buffers.push(new Uint8Array(MEMORY_CHUNK)) - 1;
        used = 0;
      }
      buffers[chunkIndex].set(src, used);
      buffer = chunkIndex;
      at = used;
      used += src.length;
    }
    if (3 * count + 3 > table.length) {
      const grown = new Uint32Array(table.length * 2);
      grown.set(table);
      table = grown;
    }
    table[3 * count] = buffer;
    table[3 * count + 1] = at;
    table[3 * count + 2] = src.length;
    count += 1;
  };
  /** A view of entry `i` (0 ≤ i < count). @param {number} i */
  const view = (i) => {
    const at = table[3 * i + 1];
    return buffers[table[3 * i]].subarray(at, at + table[3 * i + 2]);
  };
  const storage = {
    append(bytes, meta) {
      const src = toBytes(bytes);
      // Lexecon passes the entry's head as `meta`; read it from the bytes
      // only when called without it.
      const head = meta ?? entryHead(src);
      const index = count;
      if (head && head.index !== index) {
        throw new LexeconStorageError(`append conflict: entry ${head.index} offered, but the log holds ${index} entries`, {
          code: "ledger_contention",
        });
      }
      keep(src);
      if (head && byHash) byHash.set(head.entry_hash, index);
      return index;
    },
    get(index) {
      return Number.isInteger(index) && index >= 0 && index < count ? view(index).slice() : null;
    },
    getRange(start, end) {
      const from = Math.max(0, Math.trunc(Number(start)) || 0);
      const to = Math.min(count, end === undefined ? count : Math.trunc(Number(end)) || 0);
      const out = [];
      for (let i = from; i < to; i++) out.push(view(i).slice());
      return out;
    },
    length() {
      return count;
    },
    find(entryHash) {
      if (!byHash) {
        byHash = new Map();
        for (let i = 0; i < count; i++) {
          const head = entryHead(view(i));
          if (head) byHash.set(head.entry_hash, i);
        }
      }
      return byHash.get(entryHash) ?? null;
    },
  };
  copyingAdapters.set(storage, storage.append);
  return storage;
}

/**
 * `fileStorage`'s options: `{ readOnly?: boolean }`. A misspelt `readOnly`
 * would open the file for writing (taking its lock, cutting a torn tail),
 * so unknown options are refused.
 * @param {unknown} options
 * @returns {boolean}
 */
export function readOnlyOption(options) {
  const o = knownOptions(options, "fileStorage", ["readOnly"], " ({ readOnly? })", (message) => new LexeconConfigError(message));
  if (o.readOnly === undefined) return false;
  if (typeof o.readOnly !== "boolean") {
    throw new LexeconConfigError(`fileStorage's readOnly must be a boolean, got ${typeof o.readOnly}`);
  }
  return o.readOnly;
}
