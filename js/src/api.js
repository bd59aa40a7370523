// Everything the package exports, whatever the runtime. The entry points in
// src/entry/ instantiate the WebAssembly module their runtime's way, then
// re-export this.
import { engine } from "./wasm.js";
import { keyBytes } from "./keys.js";
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
 * (64 hex digits, 32 bytes, or a host node's `public_key.pem` text), e.g.
 * inside the tool that receives it.
 * @param {string} token
 * @param {{ publicKey: string | Uint8Array, tool?: string, actor?: string, nowMs?: number }} options
 * @returns {import("../types/index.js").TokenVerification}
 */
export function verifyToken(token, options) {
  const o = options ?? /** @type {any} */ ({});
  const key = keyBytes(o.publicKey, "publicKey", "PUBLIC KEY");
  const nowMs = o.nowMs ?? Date.now();
  if (typeof nowMs !== "number" || !Number.isFinite(nowMs) || nowMs < 0) {
    // Never a time at which nothing has expired.
    throw new LexeconConfigError("nowMs must be a finite, non-negative number of milliseconds since the Unix epoch");
  }
  const { tool, actor } = tokenExpectations(o, ["publicKey", "tool", "actor", "nowMs"]);
  try {
    return JSON.parse(engine().verifyTokenWithKey(String(token), key, nowMs, tool, actor));
  } catch (e) {
    throw fromEngine(e);
  }
}
