// The in-process node: the Rust engine (WebAssembly) plus a storage adapter.
// No policy logic lives here. This file only orders the work: one operation
// at a time against one chain head, prepare → await storage → commit, and
// abort + resync from storage whenever storage did not acknowledge.
//
// An operation that finds nothing queued starts at once, in the caller's
// call; while storage answers synchronously (memoryStorage) it also finishes
// there, and its promise is already settled when returned. The first
// promise storage returns moves the rest of the operation, and every later
// one, behind it in the queue.

import { engine } from "./wasm.js";
import {
  LexeconConfigError,
  LexeconError,
  LexeconLedgerError,
  LexeconPolicyError,
  LexeconRequestError,
  LexeconStorageError,
  fromEngine,
  tokenExpectations,
} from "./errors.js";
import { knownOptions } from "./options.js";
import { keyBytes } from "./keys.js";
import { OPENED, checkAdapter, copiesOnAppend, entryHead, memoryStorage, toBytes, toIndex } from "./storage.js";

const CONSTRUCT = Symbol("Lexecon.create");
/** What `Lexecon.create` takes (types/index.d.ts, `LexeconOptions`). */
const CREATE_OPTIONS = ["nodeId", "policy", "storage", "signingKey", "defaultTokenTtl", "maxTokenTtl", "deterministic", "verifyOnOpen"];
const decoder = new TextDecoder();
/** Entries read per `getRange` call while replaying. */
const REPLAY_CHUNK = 512;

/**
 * @param {unknown} key
 * @returns {Uint8Array | undefined}
 */
function signingSeed(key) {
  if (key === undefined || key === null) return undefined;
  return keyBytes(key, "signingKey", "PRIVATE KEY");
}

/**
 * `verifyLedger`'s options: whether to check signatures. A misspelt option
 * must not turn the signature check off unnoticed.
 * @param {unknown} options
 * @returns {boolean}
 */
function ledgerOptions(options) {
  const o = knownOptions(
    options,
    "verifyLedger",
    ["signatures"],
    " ({ signatures? })",
    (message, field) => new LexeconRequestError(message, { field }),
  );
  if (o.signatures === undefined) return false;
  if (typeof o.signatures !== "boolean") {
    throw new LexeconRequestError(`signatures must be a boolean, got ${typeof o.signatures}`, { field: "signatures" });
  }
  return o.signatures;
}

/** @param {string} json */
function parse(json) {
  return JSON.parse(json);
}

/**
 * @param {unknown} value
 * @returns {value is PromiseLike<unknown>}
 */
function isThenable(value) {
  return (
    value !== null &&
    (typeof value === "object" || typeof value === "function") &&
    typeof (/** @type {any} */ (value).then) === "function"
  );
}

/**
 * `f(value)`, after `value` settles if it is a promise.
 * @template T, U
 * @param {T | PromiseLike<T>} value
 * @param {(v: T) => U | PromiseLike<U>} f
 * @returns {U | PromiseLike<U>}
 */
function andThen(value, f) {
  return isThenable(value) ? Promise.resolve(value).then(f) : f(/** @type {T} */ (value));
}

/**
 * The error `decide` rejects with when storage did not store an entry.
 * @param {{ index: number }} record
 * @param {unknown} e
 */
function storageError(record, e) {
  if (e instanceof LexeconError) return e;
  return new LexeconStorageError(
    `ledger storage did not store entry ${record.index}: ${/** @type {any} */ (e)?.message ?? e}`,
    { cause: e },
  );
}

/**
 * Runs a read of the storage adapter; what it throws becomes a
 * `LexeconStorageError` (a `LexeconError` stays as it is).
 * @template T
 * @param {string} what for the message: "read entry 3"
 * @param {() => T | PromiseLike<T>} read
 * @returns {Promise<T>}
 */
async function readStorage(what, read) {
  try {
    return await read();
  } catch (e) {
    if (e instanceof LexeconError) throw e;
    throw new LexeconStorageError(`ledger storage could not ${what}: ${/** @type {any} */ (e)?.message ?? e}`, { cause: e });
  }
}

/**
 * JSON has no NaN or Infinity (JSON.stringify writes null, which reads as
 * absent): the field that holds one, to say what was sent.
 * @param {object} request
 * @returns {{ field: string, message: string } | undefined}
 */
function nonFinite(request) {
  for (const field of ["risk_level", "token_ttl"]) {
    const v = /** @type {any} */ (request)[field];
    if (typeof v === "number" && !Number.isFinite(v)) return { field, message: `must be a finite number, got ${v}` };
  }
  return undefined;
}

/**
 * The requests as JSON text, taken when `decide` is called.
 * @param {unknown[]} requests
 */
function requestsJson(requests) {
  try {
    return JSON.stringify(requests);
  } catch (e) {
    throw new LexeconRequestError(`request is not JSON: ${/** @type {any} */ (e)?.message ?? e}`, { field: "request" });
  }
}

export class Lexecon {
  /** @type {any} */ #engine;
  /** @type {any} */ #storage;
  /** The engine's WebAssembly.Memory (see `recordPtr`). @type {WebAssembly.Memory} */ #memory = engine().wasmMemory();
  /**
   * Settles when the last queued operation has; null while one runs inline
   * with nothing queued behind it (see `#submit`).
   * @type {Promise<unknown> | null}
   */
  #queue = Promise.resolve();
  /** Opens the gate `#tail` made for the operation running inline. @type {((v: unknown) => void) | undefined} */
  #openGate;
  /** Operations queued or running; a new one runs at once only when 0. */
  #busy = 0;
  /** Storage may hold entries this engine has not applied (after a failed append). */
  #stale = false;

  /**
   * Use `Lexecon.create`.
   * @param {symbol} token
   * @param {any} wasmEngine
   * @param {any} storage
   */
  constructor(token, wasmEngine, storage) {
    if (token !== CONSTRUCT) throw new TypeError("use `await Lexecon.create(options)`");
    this.#engine = wasmEngine;
    this.#storage = storage;
  }

  /**
   * Opens a node: restores the chain head, the active policy and the
   * rate-limit windows from the end of the ledger in `storage` (reading back
   * only to the latest policy load and across the longest rate-limit window;
   * `verifyLedger()` checks every link), then loads `policy` if given (recorded in the ledger only when it differs
   * from the active one).
   * @param {import("../types/index.js").LexeconOptions} options
   */
  static async create(options) {
    const o = /** @type {any} */ (
      knownOptions(options, "Lexecon.create", CREATE_OPTIONS, "", (message) => new LexeconConfigError(message))
    );
    if (o.verifyOnOpen !== undefined && typeof o.verifyOnOpen !== "boolean") {
      throw new LexeconConfigError(`verifyOnOpen must be a boolean, got ${typeof o.verifyOnOpen}`);
    }
    // JSON has no NaN: say what was given, not what the engine read (null).
    for (const key of ["defaultTokenTtl", "maxTokenTtl"]) {
      const v = o[key];
      if (v !== undefined && v !== null && !(typeof v === "number" && Number.isInteger(v) && v >= 0)) {
        throw new LexeconConfigError(`${key} must be a whole number of seconds, got ${typeof v === "number" ? v : typeof v}`);
      }
    }
    if (typeof o.nodeId !== "string" || o.nodeId.trim() === "") {
      throw new LexeconConfigError("nodeId must be a non-empty string");
    }
    const storage = o.storage ?? memoryStorage();
    checkAdapter(storage);
    // A fileStorage that this call opens (and so locks) is closed again if
    // the call fails: the caller may hold no other reference to it.
    const opened = typeof storage[OPENED] === "function" ? () => storage[OPENED]() : undefined;
    const openBefore = opened?.();
    try {
      const config = {
        node_id: o.nodeId,
        default_token_ttl: o.defaultTokenTtl ?? 300,
        max_token_ttl: o.maxTokenTtl ?? 3600,
      };
      const seed = signingSeed(o.signingKey);
      const deterministic = o.deterministic === undefined ? undefined : JSON.stringify(o.deterministic);
      let wasmEngine;
      try {
        wasmEngine = new (engine().WasmEngine)(JSON.stringify(config), seed, deterministic);
      } catch (e) {
        throw fromEngine(e);
      } finally {
        seed?.fill(0);
      }
      const gov = new Lexecon(CONSTRUCT, wasmEngine, storage);
      if (o.verifyOnOpen) {
        const report = await gov.verifyLedger();
        if (!report.valid) {
          throw new LexeconLedgerError(
            `the stored ledger does not verify at entry ${report.firstInvalid}: ${report.failure?.message ?? "altered"}`,
          );
        }
      }
      await gov.#restore();
      if (o.policy !== undefined && o.policy !== null) await gov.loadPolicy(o.policy);
      return gov;
    } catch (e) {
      if (opened && !openBefore && opened()) await storage.close().catch(() => undefined);
      throw e;
    }
  }

  /** Lowercase hex of the node's Ed25519 public key (verifies its tokens and signatures). */
  get publicKey() {
    return this.#engine.publicKey;
  }

  /** `ed25519:` and the first 16 hex digits of the SHA-256 of the public key. */
  get keyId() {
    return this.#engine.keyId;
  }

  /** The node id recorded in decisions and tokens. */
  get nodeId() {
    return this.#engine.nodeId;
  }

  /** The chain head this node has committed: entries and the last entry's hash. */
  get head() {
    return { length: this.#engine.length, hash: this.#engine.headHash };
  }

  /** Hash of the active policy, or null before one is loaded. */
  get policyHash() {
    return this.#engine.policyHash ?? null;
  }

  /**
   * Decides one request. Resolves after its ledger entry is stored.
   * @param {import("../types/index.js").DecisionRequest} request
   * @returns {Promise<import("../types/index.js").Decision>}
   */
  decide(request) {
    if (request === null || typeof request !== "object" || Array.isArray(request)) {
      return Promise.reject(new LexeconRequestError("request must be an object", { field: "request" }));
    }
    const bad = nonFinite(request);
    if (bad) return Promise.reject(new LexeconRequestError(`invalid request: ${bad.field}: ${bad.message}`, { field: bad.field }));
    // The request as it is now: a call that waits its turn must not see
    // changes the caller makes to the object afterwards.
    let json;
    try {
      json = requestsJson([request]);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#submit(
      () => this.#decide(json),
      ([slot]) => {
        if (slot.error) {
          const { field, message } = slot.error;
          throw new LexeconRequestError(`invalid request: ${field}: ${message}`, { field });
        }
        return slot;
      },
    );
  }

  /**
   * Decides requests in order; each slot holds a decision or, for a request
   * that does not validate, `{ error: { code, field, message } }`.
   * @param {import("../types/index.js").DecisionRequest[]} requests
   */
  decideBatch(requests) {
    if (!Array.isArray(requests)) {
      return Promise.reject(new LexeconRequestError("requests must be an array", { field: "requests" }));
    }
    // A request with NaN or Infinity gets its own error, as from `decide`;
    // the engine is sent a value it refuses, so nothing is decided for it.
    /** @type {Map<number, { field: string, message: string }>} */
    const bad = new Map();
    const sent = requests.map((request, i) => {
      const b = request !== null && typeof request === "object" ? nonFinite(request) : undefined;
      if (!b) return request;
      bad.set(i, b);
      return { ...request, [b.field]: "not a finite number" };
    });
    let json;
    try {
      json = requestsJson(sent);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.#submit(
      () => this.#decide(json),
      (decisions) =>
        bad.size === 0
          ? decisions
          : decisions.map((d, i) => {
              const b = bad.get(i);
              return b ? { error: { code: "invalid_request", field: b.field, message: b.message } } : d;
            }),
    );
  }

  /**
   * Loads a policy (a JSON object, or JSON text for line/column in errors).
   * @param {object | string} policy
   * @returns {Promise<import("../types/index.js").PolicyLoaded>}
   */
  loadPolicy(policy) {
    let text;
    if (typeof policy === "string") text = policy;
    else if (policy !== null && typeof policy === "object") text = JSON.stringify(policy, null, 2);
    else return Promise.reject(new LexeconConfigError("policy must be an object or JSON text"));
    const loading = this.#submit(
      () => this.#run(() => this.#engine.preparePolicy(text)),
      (out) => out.policy,
    );
    if (typeof policy === "string") return loading;
    // Line and column would point into JSON.stringify's text, which the
    // caller never saw: an object's errors name the path alone.
    return loading.catch((e) => {
      if (e instanceof LexeconPolicyError && e.line !== null) {
        throw new LexeconPolicyError(e.message.replace(/ \(line \d+, column \d+\)$/, ""), { path: e.path });
      }
      throw e;
    });
  }

  /**
   * Verifies a capability token with this node's key, now.
   * @param {string} token
   * @param {{ tool?: string, actor?: string }} [expect]
   * @returns {Promise<import("../types/index.js").TokenVerification>}
   */
  async verifyToken(token, expect = {}) {
    if (typeof token !== "string") throw new LexeconRequestError("token must be a string", { field: "token" });
    const { tool, actor } = tokenExpectations(expect);
    try {
      return parse(this.#engine.verifyToken(token, tool, actor));
    } catch (e) {
      throw fromEngine(e);
    }
  }

  /**
   * Walks every stored entry and checks hashes and links; with
   * `{ signatures: true }` also that every decision is signed by this node's
   * key (what a rewrite with recomputed hashes cannot fake).
   * @param {{ signatures?: boolean }} [options]
   * @returns {Promise<import("../types/index.js").LedgerReport>}
   */
  async verifyLedger(options) {
    const signatures = ledgerOptions(options);
    const verifier = new (engine().WasmChainVerifier)();
    try {
      // Held to this node's own head too: entries it committed and that are
      // gone, or a chain rewritten with its hashes recomputed, do not verify.
      verifier.committed(this.#engine.length, this.#engine.headHash);
      if (signatures) verifier.signatures(keyBytes(this.#engine.publicKey, "publicKey", "PUBLIC KEY"));
      const length = toIndex(await readStorage("read the ledger's length", () => this.#storage.length()));
      if (Number.isNaN(length)) throw new LexeconStorageError("storage.length() did not return a length");
      for (let i = 0; i < length; i++) {
        let bytes;
        try {
          const got = await this.#storage.get(i);
          bytes = got === null || got === undefined ? null : toBytes(got);
        } catch (e) {
          verifier.missing(`storage could not read the entry: ${/** @type {any} */ (e)?.message ?? e}`);
          break;
        }
        if (bytes === null) {
          verifier.missing("entry is missing from storage");
          break;
        }
        if (!verifier.push(bytes)) break;
      }
      const r = parse(verifier.report());
      /** @type {import("../types/index.js").LedgerReport} */
      const report = { valid: r.valid, entries: r.entries, headHash: r.head_hash };
      if (r.first_invalid !== undefined) report.firstInvalid = r.first_invalid;
      if (r.failure) report.failure = r.failure;
      return report;
    } finally {
      verifier.free();
    }
  }

  /**
   * A stored entry, parsed, by index or entry hash; null when absent.
   * @param {number | string} indexOrHash
   */
  async getLedgerEntry(indexOrHash) {
    /** @type {number} */
    let index;
    if (typeof indexOrHash === "number") {
      if (!Number.isSafeInteger(indexOrHash) || indexOrHash < 0) {
        throw new LexeconRequestError(`expected a ledger index (a whole number from 0), got ${indexOrHash}`, { field: "index" });
      }
      index = indexOrHash;
    } else if (typeof indexOrHash === "string") {
      // As the server's GET /ledger/entries/{hash}.
      const hash = indexOrHash.toLowerCase();
      if (!/^[0-9a-f]{64}$/.test(hash)) {
        throw new LexeconRequestError("expected a ledger entry hash: 64 hexadecimal digits", { field: "hash" });
      }
      const found = await readStorage("find the entry", () => this.#findEntry(hash));
      if (found === null) return null;
      index = found;
    } else {
      throw new LexeconRequestError(`expected a ledger index or an entry hash, got ${indexOrHash === null ? "null" : typeof indexOrHash}`, {
        field: "index",
      });
    }
    const bytes = await readStorage(`read entry ${index}`, () => this.#storage.get(index));
    if (bytes === null || bytes === undefined) return null;
    let entry;
    try {
      entry = JSON.parse(decoder.decode(toBytes(bytes)));
    } catch (e) {
      throw new LexeconStorageError(`ledger storage returned entry ${index} that is not a ledger entry: ${/** @type {any} */ (e)?.message ?? e}`, {
        cause: e,
      });
    }
    // As the server's GET /ledger/entries/{hash} gives it.
    if (entry.kind === "decision" && typeof entry.payload?.decision_hash === "string") {
      entry.decision_hash = entry.payload.decision_hash;
    }
    if (entry.kind === "policy_load" && typeof entry.payload?.policy_hash === "string") {
      entry.policy_hash = entry.payload.policy_hash;
    }
    return entry;
  }

  /**
   * The index of the entry with hash `hash`, or null: through the adapter's
   * `find` where it has one, else by reading every entry.
   * @param {string} hash lowercase hex
   * @returns {Promise<number | null>}
   */
  async #findEntry(hash) {
    if (typeof this.#storage.find === "function") {
      const found = await this.#storage.find(hash);
      if (found === null || found === undefined) return null;
      const index = toIndex(found);
      if (Number.isNaN(index)) throw new LexeconStorageError(`storage.find() did not return an index or null: ${String(found)}`);
      return index;
    }
    const length = toIndex(await this.#storage.length());
    if (Number.isNaN(length)) throw new LexeconStorageError("storage.length() did not return a length");
    for (let i = 0; i < length; i++) {
      const bytes = await this.#storage.get(i);
      if (bytes && entryHead(toBytes(bytes))?.entry_hash === hash) return i;
    }
    return null;
  }

  // -------------------------------------------------------------------------

  /**
   * Runs `task`, then `finish` on its result, after every earlier operation
   * has settled. When none is pending it runs at once, inline: with storage
   * that answers synchronously it has finished when this returns.
   * @template T, U
   * @param {() => T | PromiseLike<T>} task
   * @param {(result: T) => U} finish
   * @returns {Promise<U>}
   */
  #submit(task, finish) {
    if (this.#busy > 0 || this.#stale) {
      this.#busy++;
      const operation = this.#tail().then(async () => {
        if (this.#stale) await this.#resync();
        return finish(await task());
      });
      const settled = () => {
        this.#busy--;
      };
      this.#queue = operation.then(settled, settled);
      return operation;
    }
    this.#busy++;
    const idle = /** @type {Promise<unknown>} */ (this.#queue);
    this.#queue = null;
    let result;
    try {
      result = task();
    } catch (e) {
      this.#inlineDone(idle);
      return Promise.reject(e);
    }
    if (isThenable(result)) {
      const operation = Promise.resolve(result).then(finish);
      const done = () => this.#inlineDone(idle);
      operation.then(done, done);
      return operation;
    }
    this.#inlineDone(idle);
    try {
      return Promise.resolve(finish(result));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * What the next queued operation waits for. While an operation runs inline
   * (`#queue` is null) that is a gate it opens when it settles, made only
   * when something has to wait: storage that calls back into this node from
   * `append`, or calls made while `append`'s promise is pending.
   * @returns {Promise<unknown>}
   */
  #tail() {
    if (this.#queue === null) {
      this.#queue = new Promise((resolve) => {
        this.#openGate = resolve;
      });
    }
    return this.#queue;
  }

  /**
   * The inline operation has settled: open its gate, if one was made.
   * @param {Promise<unknown>} idle `#queue` before it started (settled)
   */
  #inlineDone(idle) {
    this.#busy--;
    const open = this.#openGate;
    if (open) {
      this.#openGate = undefined;
      open(undefined);
    } else {
      this.#queue = idle;
    }
  }

  /** @param {string} json the requests, as `requestsJson` wrote them */
  #decide(json) {
    return andThen(this.#run(() => this.#engine.prepareDecisions(json)), (out) => out.decisions);
  }

  /**
   * prepare → append every record in order → commit; on any failure abort,
   * resync from storage, and reject (fail closed). Returns the engine's
   * answer, or a promise of it once storage returned one.
   * @param {() => string} prepare
   */
  #run(prepare) {
    let out;
    try {
      out = parse(prepare());
    } catch (e) {
      this.#engine.abort();
      throw fromEngine(e);
    }
    return this.#append(out, 0);
  }

  /**
   * Appends `out.records` from the `k`th on, then commits.
   * @param {any} out
   * @param {number} k
   * @returns {any}
   */
  #append(out, k) {
    const records = out.records;
    for (; k < records.length; k++) {
      const record = records[k];
      // An adapter that copies synchronously reads the bytes where they
      // are; any other gets its own copy, which it may keep.
      const bytes =
        copiesOnAppend(this.#storage)
          ? new Uint8Array(this.#memory.buffer, this.#engine.recordPtr(k), this.#engine.recordLen(k))
          : this.#engine.recordBytes(k);
      let stored;
      try {
        stored = this.#storage.append(bytes, {
          index: record.index,
          entry_hash: record.entry_hash,
          prev_hash: record.prev_hash,
        });
      } catch (e) {
        return this.#fail(storageError(record, e));
      }
      if (isThenable(stored)) {
        const next = k + 1;
        return Promise.resolve(stored).then(
          (index) => this.#checkStored(record, index) ?? this.#append(out, next),
          (e) => this.#fail(storageError(record, e)),
        );
      }
      const failed = this.#checkStored(record, stored);
      if (failed) return failed;
    }
    this.#engine.commit();
    return out;
  }

  /**
   * Nothing when storage put `record` where it belongs; else the failure.
   * @param {{ index: number }} record
   * @param {unknown} stored what `append` returned or resolved to
   */
  #checkStored(record, stored) {
    if (toIndex(stored) === record.index) return undefined;
    return this.#fail(
      new LexeconStorageError(
        `ledger storage stored entry ${record.index} at index ${String(stored)}: ` +
          "append must resolve to the index of the stored entry",
      ),
    );
  }

  /**
   * Abandons the prepared work (see `#failed`), then rejects with `error`.
   * @param {Error} error
   * @returns {Promise<never>}
   */
  #fail(error) {
    return this.#failed().then(() => {
      throw error;
    });
  }

  /** Storage did not acknowledge: forget the prepared work and catch up with what it holds. */
  async #failed() {
    this.#engine.abort();
    this.#stale = true;
    try {
      await this.#resync();
    } catch {
      // Stays stale: the next operation retries the resync first.
    }
  }

  async #resync() {
    await this.#catchUp();
    this.#stale = false;
  }

  /** How many entries the storage holds; a storage error if it cannot say. */
  async #storedLength() {
    let length;
    try {
      length = toIndex(await this.#storage.length());
    } catch (e) {
      // An adapter's own LexeconError (fileStorage's `locked`, `not_a_ledger`, …) keeps its code.
      if (e instanceof LexeconError) throw e;
      throw new LexeconStorageError(`ledger storage is unavailable: ${/** @type {any} */ (e)?.message ?? e}`, { cause: e });
    }
    if (Number.isNaN(length)) throw new LexeconStorageError("storage.length() did not return a length");
    return length;
  }

  /** Restores a fresh engine from the end of the stored ledger, newest entry first. */
  async #restore() {
    const storage = this.#storage;
    const length = await this.#storedLength();
    try {
      let want = this.#engine.restoreBegin(length);
      while (want >= 0) {
        let bytes;
        try {
          bytes = await storage.get(want);
        } catch (e) {
          if (e instanceof LexeconError) throw e;
          throw new LexeconStorageError(`cannot read ledger entry ${want}: ${/** @type {any} */ (e)?.message ?? e}`, { cause: e });
        }
        if (bytes === null || bytes === undefined) throw new LexeconLedgerError(`entry ${want} is missing from storage`);
        want = this.#engine.restorePush(toBytes(bytes));
      }
      this.#engine.restoreFinish();
    } catch (e) {
      if (e instanceof LexeconError) throw e;
      throw fromEngine(e);
    }
  }

  /** Applies every stored entry this engine has not seen. */
  async #catchUp() {
    const storage = this.#storage;
    const length = await this.#storedLength();
    let next = this.#engine.length;
    if (length < next) {
      throw new LexeconLedgerError(
        `storage holds ${length} entries but this node has committed ${next}: the ledger was truncated`,
      );
    }
    while (next < length) {
      const end = Math.min(length, next + REPLAY_CHUNK);
      let chunk;
      try {
        if (typeof storage.getRange === "function") {
          chunk = await storage.getRange(next, end);
        } else {
          chunk = [];
          for (let i = next; i < end; i++) chunk.push(await storage.get(i));
        }
      } catch (e) {
        if (e instanceof LexeconError) throw e;
        throw new LexeconStorageError(`cannot read ledger entries ${next}..${end}: ${/** @type {any} */ (e)?.message ?? e}`, {
          cause: e,
        });
      }
      if (!Array.isArray(chunk) || chunk.length === 0) {
        throw new LexeconLedgerError(`entry ${next} is missing from storage`);
      }
      for (const item of chunk) {
        if (item === null || item === undefined) throw new LexeconLedgerError(`entry ${next} is missing from storage`);
        try {
          this.#engine.observe(toBytes(item));
        } catch (e) {
          throw fromEngine(e);
        }
        next++;
      }
    }
  }
}
