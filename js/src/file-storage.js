// `fileStorage(path)`: the ledger in one append-only file, in the Rust
// host's on-disk format (host/src/storage/file.rs), so `lexecon ledger
// verify` reads what this writes and this opens what the host wrote.
//
//   file   = "LXLEDG01" record*
//   record = len u32le | crc32 u32le | index u64le | entry_hash 32 raw bytes | payload (len bytes)
//   crc32  = CRC-32/IEEE over index ‖ entry_hash ‖ payload
//
// Appends are one positioned write plus fdatasync before `append` resolves;
// a failed write is cut back. On open, a torn last record (a crash in the
// middle of an append, never acknowledged) is truncated, and so are zeros
// where the next record should start (the file grew, the data never reached
// the disk); a complete record is never dropped: a damaged one keeps its
// place and reading it fails. A new file is created whole, so one shorter
// than its header lost its entries and is refused. The scan is the Rust
// host's, rule for rule.
//
// Node only (imports node:fs). Edge runtimes get `file-storage-unavailable.js`.

import { link, open, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { constants, readlinkSync, realpathSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import process from "node:process";
import { LexeconConfigError, LexeconStorageError } from "./errors.js";
import { OPENED, entryHead, readOnlyOption, toBytes } from "./storage.js";

const MAGIC = new Uint8Array([0x4c, 0x58, 0x4c, 0x45, 0x44, 0x47, 0x30, 0x31]); // LXLEDG01
const MAGIC_LEN = 8;
const HEADER_LEN = 48;
const HASH_LEN = 32;
const SCAN_WINDOW = 1 << 20;
const MAX_READ_SPAN = 1 << 20;

/** Paths open for writing in this process. */
const writers = new Set();

// ---------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected, as crc32fast computes it)
// ---------------------------------------------------------------------------

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * @param {number} crc running value (start with 0xffffffff)
 * @param {Uint8Array} bytes
 */
function crcUpdate(crc, bytes) {
  let c = crc;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return c;
}

/**
 * The CRC a record stores: over index (u64le) ‖ hash ‖ payload.
 * @param {Uint8Array} indexAndHash the 40 header bytes 8..48
 * @param {Uint8Array} payload
 */
function recordCrc(indexAndHash, payload) {
  return (crcUpdate(crcUpdate(0xffffffff, indexAndHash), payload) ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------

/**
 * @typedef {{ payloadLen: number, crc: number, index: number, hash: Uint8Array, raw: Uint8Array }} Header
 */

/** @param {Uint8Array} bytes at least 48 bytes */
function parseHeader(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_LEN);
  const big = view.getBigUint64(8, true);
  return {
    payloadLen: view.getUint32(0, true),
    crc: view.getUint32(4, true),
    index: big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big),
    hash: bytes.slice(16, 48),
    raw: bytes.slice(8, 48),
  };
}

/** @param {Header} h */
const frameLen = (h) => HEADER_LEN + h.payloadLen;

/** @param {Header} h @param {Uint8Array} payload */
const checksumMatches = (h, payload) => recordCrc(h.raw, payload) === h.crc;

/** @param {string} hex */
function hashBytes(hex) {
  if (typeof hex !== "string" || !/^[0-9a-f]{64}$/.test(hex)) return null;
  const out = new Uint8Array(HASH_LEN);
  for (let i = 0; i < HASH_LEN; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** @param {Uint8Array} bytes */
function hex(bytes) {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/**
 * @param {number} index
 * @param {Uint8Array} hash
 * @param {Uint8Array} payload
 */
function encodeRecord(index, hash, payload) {
  const out = new Uint8Array(HEADER_LEN + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, payload.length, true);
  view.setBigUint64(8, BigInt(index), true);
  out.set(hash, 16);
  out.set(payload, HEADER_LEN);
  view.setUint32(4, recordCrc(out.subarray(8, 48), payload), true);
  return out;
}

// ---------------------------------------------------------------------------
// Scanning on open (the same rules as the Rust host's scanner)
// ---------------------------------------------------------------------------

class ReadWindow {
  /** @param {import("node:fs/promises").FileHandle} fh @param {number} fileLen */
  constructor(fh, fileLen) {
    this.fh = fh;
    this.fileLen = fileLen;
    this.start = 0;
    this.buf = new Uint8Array(0);
  }

  /** @param {number} offset @param {number} len */
  has(offset, len) {
    return offset >= this.start && offset + len <= this.start + this.buf.length;
  }

  /** @param {number} offset @param {number} len */
  slice(offset, len) {
    return this.buf.subarray(offset - this.start, offset - this.start + len);
  }

  /** @param {number} offset @param {number} len */
  async bytes(offset, len) {
    if (offset + len > this.fileLen) throw new Error("read past the scanned end");
    if (!this.has(offset, len)) {
      const refill = Math.min(Math.max(len, SCAN_WINDOW), this.fileLen - offset);
      this.buf = new Uint8Array(refill);
      await readExact(this.fh, this.buf, offset);
      this.start = offset;
    }
    return this.slice(offset, len);
  }
}

/**
 * @param {import("node:fs/promises").FileHandle} fh
 * @param {Uint8Array} buf
 * @param {number} position
 */
async function readExact(fh, buf, position) {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fh.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) {
      const e = new Error(`unexpected end of file at byte ${position + done}`);
      /** @type {any} */ (e).code = "UNEXPECTED_EOF";
      throw e;
    }
    done += bytesRead;
  }
}

/**
 * @param {import("node:fs/promises").FileHandle} fh
 * @param {Uint8Array} buf
 * @param {number} position
 */
async function writeAll(fh, buf, position) {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

function emptyIndex() {
  return {
    /** @type {number[]} */ offsets: [],
    /** @type {number[]} */ lens: [],
    /** @type {Map<number, string>} */ damaged: new Map(),
    /** @type {Map<string, number>} */ byHash: new Map(),
    end: MAGIC_LEN,
  };
}

/**
 * @param {import("node:fs/promises").FileHandle} fh
 * @param {number} fileLen
 */
async function scanFile(fh, fileLen) {
  const win = new ReadWindow(fh, fileLen);
  const index = emptyIndex();
  /** @type {{ index: number | null, offset: number, detail: string }[]} */
  const problems = [];
  /** @type {number | null} */
  let barrenFrom = null;

  const pushDamaged = (/** @type {number} */ offset, /** @type {string} */ detail) => {
    const position = index.offsets.length;
    index.offsets.push(offset);
    index.lens.push(0);
    index.damaged.set(position, detail);
    problems.push({ index: position, offset, detail });
  };

  const pushRecord = (/** @type {number} */ offset, /** @type {Header} */ header) => {
    const position = index.offsets.length;
    if (header.index === position) {
      index.byHash.set(hex(header.hash), position);
      index.offsets.push(offset);
      index.lens.push(header.payloadLen);
    } else {
      pushDamaged(
        offset,
        `the record at byte ${offset} says it is entry ${header.index}, but it is entry ${position} in file order`,
      );
    }
    return offset + frameLen(header);
  };

  const readFrame = async (/** @type {number} */ offset) => {
    const available = fileLen - offset;
    if (available < HEADER_LEN) return { kind: "incomplete", header: null };
    const header = parseHeader(await win.bytes(offset, HEADER_LEN));
    if (frameLen(header) > available) return { kind: "incomplete", header };
    const payload = await win.bytes(offset + HEADER_LEN, header.payloadLen);
    const computed = recordCrc(header.raw, payload);
    return computed === header.crc ? { kind: "valid", header } : { kind: "bad", header, computed };
  };

  const describeFrame = (/** @type {any} */ frame, /** @type {number} */ offset) => {
    const available = fileLen - offset;
    const crcHex = (/** @type {number} */ n) => n.toString(16).padStart(8, "0");
    if (frame.kind === "bad") {
      return `the record at byte ${offset} fails its checksum (stored ${crcHex(frame.header.crc)}, computed ${crcHex(frame.computed)})`;
    }
    if (frame.header) {
      return `the record at byte ${offset} declares a ${frame.header.payloadLen}-byte payload but the file ends ${Math.max(0, available - HEADER_LEN)} bytes after its header`;
    }
    return `the file ends ${available} bytes into the record header at byte ${offset}`;
  };

  const findNextRecord = async (/** @type {number} */ damageStart) => {
    if (barrenFrom !== null && damageStart >= barrenFrom) return null;
    const position = index.offsets.length;
    for (let candidate = damageStart + 1; candidate + HEADER_LEN <= fileLen; candidate++) {
      const most = position + Math.floor((candidate - damageStart) / HEADER_LEN);
      const headerBytes = win.has(candidate, HEADER_LEN) ? win.slice(candidate, HEADER_LEN) : await win.bytes(candidate, HEADER_LEN);
      const view = new DataView(headerBytes.buffer, headerBytes.byteOffset, HEADER_LEN);
      const big = view.getBigUint64(8, true);
      if (big < BigInt(position) || big > BigInt(most)) continue;
      const header = parseHeader(headerBytes);
      if (candidate + frameLen(header) > fileLen) continue;
      const payload = await win.bytes(candidate + HEADER_LEN, header.payloadLen);
      if (checksumMatches(header, payload)) return { offset: candidate, index: header.index };
    }
    barrenFrom = damageStart;
    return null;
  };

  const zerosToEnd = async (/** @type {number} */ from) => {
    for (let at = from; at < fileLen; ) {
      const n = Math.min(fileLen - at, 1 << 20);
      if ((await win.bytes(at, n)).some((b) => b !== 0)) return false;
      at += n;
    }
    return true;
  };

  const pushDamagedSpan = (
    /** @type {number} */ start,
    /** @type {number} */ next,
    /** @type {number} */ nextIndex,
    /** @type {string} */ reason,
  ) => {
    const position = index.offsets.length;
    if (nextIndex === position) {
      problems.push({
        index: null,
        offset: start,
        detail: `${reason}; bytes ${start}..${next} hold no entry (the next intact record, entry ${nextIndex}, starts after them)`,
      });
    }
    for (let missing = position; missing < nextIndex; missing++) {
      pushDamaged(
        start,
        `${reason}; entries ${position}..${nextIndex} lie in the damaged bytes ${start}..${next}, so entry ${missing} cannot be read`,
      );
    }
  };

  let offset = MAGIC_LEN;
  while (offset < fileLen) {
    const frame = await readFrame(offset);
    if (frame.kind === "valid") {
      offset = pushRecord(offset, /** @type {Header} */ (frame.header));
      continue;
    }
    const reason = describeFrame(frame, offset);
    const next = await findNextRecord(offset);
    if (next) {
      pushDamagedSpan(offset, next.offset, next.index, reason);
      offset = next.offset;
      continue;
    }
    // Zeros where a record should start: the file grew but the append's
    // data never reached the disk (a crash before its sync; some file
    // systems read zeros there). No record is all zeros: a torn tail.
    if (await zerosToEnd(offset)) break;
    if (frame.kind === "bad") {
      pushDamaged(offset, `${reason}; no intact record follows, so bytes ${offset}..${fileLen} are kept as this one damaged entry`);
      offset = fileLen;
      continue;
    }
    if (frame.header) {
      const available = fileLen - offset - HEADER_LEN;
      const payload = await win.bytes(offset + HEADER_LEN, available);
      if (checksumMatches(frame.header, payload)) {
        pushDamaged(offset, `${reason}; its checksum matches those bytes, so its length field is damaged`);
        offset = fileLen;
        continue;
      }
    }
    break; // a torn tail
  }
  index.end = offset;
  return { index, problems, tailBytes: fileLen - offset };
}

// ---------------------------------------------------------------------------
// The adapter
// ---------------------------------------------------------------------------

/** @param {number} pid */
function isRunning(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return /** @type {any} */ (e)?.code === "EPERM";
  }
}

/** How long an opener waits for another's claim on the lock before giving up. */
const CLAIM_WAIT_MS = 2000;

/**
 * Writes this process's pid into `<path>.lock` unless it names another
 * running process. Node has no `flock`, so the check and the write are made
 * one opener at a time: the one that creates `<path>.lock.claim` (an
 * exclusive create) until it removes it, a few milliseconds later. Without
 * it, two writers started together could both find the lock free and both
 * open the ledger. A claim left behind by a process that died inside that
 * window is taken over once its pid is not running or it is older than
 * `CLAIM_WAIT_MS`.
 * @param {string} file
 * @param {string} lockPath
 */
async function takeLock(file, lockPath) {
  const claimPath = `${lockPath}.claim`;
  const deadline = Date.now() + CLAIM_WAIT_MS;
  for (;;) {
    let claim;
    try {
      claim = await open(claimPath, "wx", 0o644);
    } catch (e) {
      if (/** @type {any} */ (e)?.code !== "EEXIST") throw openError(e, claimPath, "create lock claim file");
      if (await staleClaim(claimPath)) {
        await unlink(claimPath).catch(() => undefined);
      } else if (Date.now() > deadline) {
        throw storageError(
          `ledger \`${file}\` is being opened by another process (${claimPath} stayed for ${CLAIM_WAIT_MS} ms); ` +
            "try again, or delete that file if no Lexecon writer is starting",
          { code: "locked" },
        );
      } else {
        await new Promise((r) => setTimeout(r, 5));
      }
      continue;
    }
    try {
      await claim.writeFile(`${process.pid}\n`);
      let holder = NaN;
      try {
        holder = parseInt((await readFile(lockPath, "utf8")).trim(), 10);
      } catch {
        // No lock file yet.
      }
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isRunning(holder)) {
        throw storageError(
          `ledger \`${file}\` is in use by process ${holder} (${lockPath}); stop it first, ` +
            "or delete the lock file if that process is not a Lexecon writer",
          { code: "locked" },
        );
      }
      try {
        await writeFile(lockPath, `${process.pid}\n`);
      } catch (e) {
        throw openError(e, lockPath, "create lock file");
      }
      return;
    } finally {
      await claim.close().catch(() => undefined);
      await unlink(claimPath).catch(() => undefined);
    }
  }
}

/**
 * Whether a claim file was left by an opener that is gone.
 * @param {string} claimPath
 */
async function staleClaim(claimPath) {
  try {
    const [text, info] = await Promise.all([readFile(claimPath, "utf8"), stat(claimPath)]);
    const pid = parseInt(text.trim(), 10);
    if (Number.isInteger(pid) && pid > 0 && !isRunning(pid)) return true;
    return Date.now() - info.mtimeMs > CLAIM_WAIT_MS;
  } catch {
    return false; // removed meanwhile: try again
  }
}

/** @param {string} directory */
/**
 * Creates the ledger file whole, as the Rust host does: the header is
 * written and synced under a temporary name beside it, then linked (or,
 * where hard links are not supported, renamed) into place and the
 * directory synced, so a crash leaves no file or a complete one. Called
 * with the lock held; a file that appeared meanwhile is kept.
 * @param {string} own the file's own path (symlinks followed)
 */
async function createWhole(own) {
  const temporary = `${own}.new-${process.pid}`;
  try {
    const t = await open(temporary, "w", 0o644);
    try {
      await writeAll(t, MAGIC, 0);
      await t.sync();
    } finally {
      await t.close();
    }
    try {
      await link(temporary, own);
    } catch (e) {
      const code = /** @type {any} */ (e)?.code;
      if (code !== "EEXIST") await rename(temporary, own);
    }
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
  await syncDirectory(dirname(own));
}

async function syncDirectory(directory) {
  try {
    const dir = await open(directory, "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch {
    // Not every platform can sync a directory (Windows); the file itself is synced.
  }
}

/**
 * @param {string} message
 * @param {Record<string, unknown>} [options]
 */
function storageError(message, options = {}) {
  const { index, ...rest } = /** @type {any} */ (options);
  const e = new LexeconStorageError(message, rest);
  if (index !== undefined) /** @type {any} */ (e).index = index;
  return e;
}

/**
 * The path of the file `file` names, with symlinks followed, so that every
 * alias of one ledger shares one writer check and one `<path>.lock`. For a
 * file that does not exist yet: its directory's real path, or where a
 * dangling symlink points (opening creates the file there). Hard links are
 * not detected.
 * @param {string} file an absolute path
 * @returns {string}
 */
function ownPath(file) {
  let at = file;
  for (let hops = 0; hops < 40; hops++) {
    try {
      return realpathSync(at);
    } catch {
      // Missing (or unreadable): a dangling symlink, or no file yet.
    }
    let target;
    try {
      target = readlinkSync(at);
    } catch {
      try {
        return join(realpathSync(dirname(at)), basename(at));
      } catch {
        return at;
      }
    }
    at = resolve(dirname(at), target);
  }
  return at;
}

/**
 * The ledger in an append-only file, interchangeable with the Rust host's.
 * Opening is lazy (the first call) so `fileStorage(path)` can be passed
 * straight to `Lexecon.create`; `await storage.open()` opens eagerly and
 * reports what recovery found.
 *
 * @param {string} path
 * @param {{ readOnly?: boolean }} [options]
 * @param {string} [cwd] what a relative `path` is relative to (default: the working directory now)
 * @returns {import("../types/file.js").FileStorage}
 */
export function fileStorage(path, options = {}, cwd = undefined) {
  if (typeof path !== "string" || path === "") throw new LexeconConfigError("fileStorage needs a file path");
  const file = cwd === undefined ? resolve(path) : resolve(cwd, path);
  const readOnly = readOnlyOption(options);
  /** The file's own path (symlinks followed), set on open. */
  let own = file;
  let lockPath = `${file}.lock`;

  /** @type {import("node:fs/promises").FileHandle | null} */
  let fh = null;
  let index = emptyIndex();
  /** @type {string | null} */
  let poisoned = null;
  let closed = false;
  /** @type {any} */
  let recovery = null;
  /** @type {Promise<any> | null} */
  let opening = null;
  /** @type {Promise<unknown>} */
  let turn = Promise.resolve();

  async function doOpen() {
    if (!readOnly) {
      // Every path to one file (a symlink, `dir/../ledger.db`) shares one
      // writer check and one lock file.
      own = ownPath(file);
      lockPath = `${own}.lock`;
      if (writers.has(own)) {
        const alias = own === file ? "" : ` (as \`${own}\`)`;
        throw storageError(`ledger \`${file}\`${alias} is already open for writing in this process`, { code: "locked" });
      }
      // Claimed before the first await, so a second open in this process
      // that starts meanwhile is refused too.
      writers.add(own);
      try {
        await takeLock(file, lockPath);
      } catch (e) {
        writers.delete(own);
        throw e;
      }
    }
    try {
      let handle;
      const openExisting = () => open(file, readOnly ? "r" : constants.O_RDWR);
      try {
        try {
          handle = await openExisting();
        } catch (e) {
          if (readOnly || /** @type {any} */ (e)?.code !== "ENOENT") throw e;
          await createWhole(own);
          handle = await openExisting();
        }
      } catch (e) {
        if (readOnly && /** @type {any} */ (e)?.code === "ENOENT") {
          throw storageError(`ledger file \`${file}\` does not exist`, { cause: e });
        }
        throw openError(e, file, "open ledger file");
      }
      fh = handle;
      let truncatedBytes = 0;
      const fileLen = (await handle.stat()).size;
      const head = new Uint8Array(Math.min(MAGIC_LEN, fileLen));
      await readExact(handle, head, 0);
      if (head.length < MAGIC_LEN && head.every((b, i) => b === MAGIC[i])) {
        // A file is created whole (createWhole): a shorter one lost its entries.
        throw storageError(
          `ledger file \`${file}\` holds ${fileLen} bytes, less than its ${MAGIC_LEN}-byte header: it was cut or emptied ` +
            "(a ledger file is created whole), so its entries are gone; restore it from a backup, or move it away to start a new chain",
          { code: "not_a_ledger" },
        );
      }
      if (!head.every((b, i) => b === MAGIC[i])) {
        throw storageError(`\`${file}\` is not a Lexecon ledger file (it does not start with LXLEDG01)`, {
          code: "not_a_ledger",
        });
      }
      const scan = await scanFile(handle, fileLen);
      let ignoredTailBytes = 0;
      if (scan.tailBytes > 0) {
        if (readOnly) {
          ignoredTailBytes = scan.tailBytes;
        } else {
          // An append interrupted by a crash: never acknowledged, so cut it.
          await handle.truncate(scan.index.end);
          await handle.datasync();
          truncatedBytes += scan.tailBytes;
        }
      }
      index = scan.index;
      recovery = { records: index.offsets.length, truncatedBytes, ignoredTailBytes, problems: scan.problems };
      return recovery;
    } catch (e) {
      await release();
      throw e;
    }
  }

  async function release() {
    if (fh) {
      await fh.close().catch(() => undefined);
      fh = null;
    }
    if (!readOnly && writers.has(own)) {
      writers.delete(own);
      try {
        if ((await readFile(lockPath, "utf8")).trim() === String(process.pid)) await writeFile(lockPath, "");
      } catch {
        // The lock file is advisory here.
      }
    }
  }

  function ready() {
    if (closed) return Promise.reject(storageError(`ledger \`${file}\` was closed`));
    if (!opening) {
      opening = doOpen();
      opening.catch(() => {
        opening = null;
      });
    }
    return opening.then(() => {
      if (poisoned) throw storageError(`ledger \`${file}\` is unusable until reopened: ${poisoned}`);
    });
  }

  /**
   * Runs `task` after earlier appends (appends are serialised).
   * @template T
   * @param {() => Promise<T>} task
   */
  function serial(task) {
    const result = turn.then(task);
    turn = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /**
   * Reads and checks entries start..end (all intact).
   * @param {number} start
   * @param {number} end
   */
  async function readRecords(start, end) {
    /** @type {Uint8Array[]} */
    const out = [];
    let i = start;
    while (i < end) {
      let j = i + 1;
      const first = /** @type {number} */ (index.offsets[i]);
      while (j < end && index.offsets[j] + HEADER_LEN + index.lens[j] - first <= MAX_READ_SPAN) j++;
      const spanEnd = index.offsets[j - 1] + HEADER_LEN + index.lens[j - 1];
      const buf = new Uint8Array(spanEnd - first);
      try {
        await readExact(/** @type {any} */ (fh), buf, first);
      } catch (e) {
        if (/** @type {any} */ (e)?.code === "UNEXPECTED_EOF") {
          throw storageError(
            `ledger storage corrupt at entry ${i}: the file ends before the record at byte ${first}; was it truncated by another program?`,
            { index: i },
          );
        }
        throw storageError(`reading entry ${i} from \`${file}\` failed: ${/** @type {any} */ (e)?.message ?? e}`);
      }
      for (let k = i; k < j; k++) {
        const at = index.offsets[k] - first;
        const frame = buf.subarray(at, at + HEADER_LEN + index.lens[k]);
        const header = parseHeader(frame);
        const payload = frame.subarray(HEADER_LEN);
        const changed = "the file was changed after the ledger was opened";
        let problem = null;
        if (header.payloadLen !== index.lens[k]) {
          problem = `the record at byte ${index.offsets[k]} now declares a ${header.payloadLen}-byte payload instead of ${index.lens[k]}; ${changed}`;
        } else if (header.index !== k) {
          problem = `the record at byte ${index.offsets[k]} now says it is entry ${header.index}; ${changed}`;
        } else if (!checksumMatches(header, payload)) {
          problem = `the record at byte ${index.offsets[k]} fails its checksum; ${changed}`;
        }
        if (problem) throw storageError(`ledger storage corrupt at entry ${k}: ${problem}`, { index: k });
        out.push(payload.slice());
      }
      i = j;
    }
    return out;
  }

  /**
   * @param {number} start
   * @param {number} end
   */
  async function getRange(start, end) {
    await ready();
    const len = index.offsets.length;
    const stop = Math.min(end, len);
    if (!(start < stop)) return [];
    for (let k = start; k < stop; k++) {
      const detail = index.damaged.get(k);
      if (detail !== undefined) {
        // Hand back the intact entries before the damage first only through get(); a range stops here.
        throw storageError(`ledger storage corrupt at entry ${k}: ${detail}`, { index: k });
      }
    }
    return readRecords(start, stop);
  }

  return {
    path,
    [OPENED]: () => opening !== null || fh !== null,
    open() {
      return ready().then(() => recovery);
    },
    async length() {
      await ready();
      return index.offsets.length;
    },
    async get(i) {
      if (!Number.isSafeInteger(i) || i < 0) return null;
      const [bytes] = await getRange(i, i + 1);
      return bytes ?? null;
    },
    getRange,
    async find(entryHash) {
      await ready();
      return index.byHash.get(entryHash) ?? null;
    },
    append(bytes, meta) {
      return serial(async () => {
        await ready();
        if (readOnly) throw storageError(`ledger \`${file}\` was opened read-only`);
        const payload = toBytes(bytes);
        const head = entryHead(payload);
        const entryIndex = head?.index ?? meta?.index;
        const hash = hashBytes(head?.entry_hash ?? meta?.entry_hash ?? "");
        if (!hash || typeof entryIndex !== "number") {
          throw storageError("the bytes are not a ledger entry (no entry_hash and index); nothing was written");
        }
        const len = index.offsets.length;
        if (entryIndex !== len) {
          throw storageError(`ledger append conflict: entry ${entryIndex} offered, but the log holds ${len} entries`, {
            code: "ledger_contention",
          });
        }
        if (payload.length > 0xffffffff) throw storageError(`entry ${entryIndex} exceeds the 4 GiB record limit; nothing was written`);
        const record = encodeRecord(entryIndex, hash, payload);
        const end = index.end;
        const handle = /** @type {import("node:fs/promises").FileHandle} */ (fh);
        try {
          await writeAll(handle, record, end);
          await handle.datasync();
        } catch (e) {
          const failure = /** @type {any} */ (e)?.message ?? String(e);
          try {
            await handle.truncate(end);
            await handle.datasync();
          } catch (undo) {
            poisoned = `appending entry ${entryIndex} failed: ${failure}, and cutting the file back to ${end} bytes also failed: ${/** @type {any} */ (undo)?.message ?? undo}`;
            throw storageError(`ledger \`${file}\` is unusable until reopened: ${poisoned}`, { cause: e });
          }
          throw storageError(
            `appending entry ${entryIndex} to \`${file}\` failed: ${failure}; nothing was appended (the file was rolled back)`,
            { cause: e },
          );
        }
        index.offsets.push(end);
        index.lens.push(payload.length);
        index.byHash.set(hex(hash), entryIndex);
        index.end = end + record.length;
        return entryIndex;
      });
    },
    async close() {
      closed = true;
      await turn;
      if (opening) await opening.catch(() => undefined);
      await release();
    },
  };
}

/**
 * @param {unknown} e
 * @param {string} path
 * @param {string} action
 */
function openError(e, path, action) {
  const err = /** @type {any} */ (e);
  if (err?.code === "ENOENT") {
    return storageError(`cannot ${action} \`${path}\`: the directory \`${dirname(path)}\` does not exist`, { cause: e });
  }
  return storageError(`cannot ${action} \`${path}\`: ${err?.message ?? err}`, { cause: e });
}

