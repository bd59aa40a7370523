// Everything the package exports, whatever the runtime. The entry points in
// src/entry/ instantiate the WebAssembly module their runtime's way, then
// re-export this.
import { engine } from "./wasm.js";
import { LexeconConfigError, fromEngine, tokenExpectations } from "./errors.js";

export { Lexecon } from "./lexecon.js";
export { memoryStorage } from "./storage.js";
export { LexeconClient } from "./client.js";
export { governed } from "./governed.js";
export { isInitialized } from "./wasm.js";
export {
  LexeconError,
  LexeconRequestError,
  LexeconPolicyError,
  LexeconStorageError,
  LexeconLedgerError,
  LexeconConfigError,
  LexeconDeniedError,
  LexeconHttpError,
  LexeconTimeoutError,
  LexeconNetworkError,
} from "./errors.js";

/** `prev_hash` of ledger entry 0. */
export const GENESIS_HASH = "572e68f91602bbac395929fa6441298df4c3752ec175e561bb7cd191c6b873e8";

/**
 * Verifies a capability token offline with the issuing node's public key
 * (64 hex digits or 32 bytes), e.g. inside the tool that receives it.
 * @param {string} token
 * @param {{ publicKey: string | Uint8Array, tool?: string, actor?: string, nowMs?: number }} options
 * @returns {import("../types/index.js").TokenVerification}
 */
export function verifyToken(token, options) {
  const o = options ?? /** @type {any} */ ({});
  let key = o.publicKey;
  if (typeof key === "string") {
    if (!/^[0-9a-fA-F]{64}$/.test(key)) throw new LexeconConfigError("publicKey must be 64 hex digits or 32 bytes");
    const bytes = new Uint8Array(32);
    for (let i = 0; i < 32; i++) bytes[i] = parseInt(key.slice(2 * i, 2 * i + 2), 16);
    key = bytes;
  }
  if (!(key instanceof Uint8Array) || key.length !== 32) {
    throw new LexeconConfigError("publicKey must be 64 hex digits or 32 bytes");
  }
  const nowMs = o.nowMs ?? Date.now();
  if (typeof nowMs !== "number" || !Number.isFinite(nowMs) || nowMs < 0) {
    // Never a time at which nothing has expired.
    throw new LexeconConfigError("nowMs must be a finite, non-negative number of milliseconds since the Unix epoch");
  }
  const { tool, actor } = tokenExpectations(o);
  try {
    return JSON.parse(engine().verifyTokenWithKey(String(token), key, nowMs, tool, actor));
  } catch (e) {
    throw fromEngine(e);
  }
}
