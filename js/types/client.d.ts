import type { BatchItemError, Decision, DecisionRequest, LedgerEntry, TokenVerification } from "./index.js";

export interface LexeconClientOptions {
  /** `https://lexecon.internal:8443` (paths are resolved against it). */
  baseUrl: string | URL;
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Per call, in ms (10000; at most 2^31 - 1; `Infinity`: none). Exceeded → `LexeconTimeoutError`. */
  timeoutMs?: number;
  /** Defaults to the global `fetch`. */
  fetch?: typeof fetch;
  /** Extra headers on every call. */
  headers?: Record<string, string>;
}

/** A client for a Lexecon server; errors are `LexeconError` subclasses with `code` and `status`. */
export declare class LexeconClient {
  constructor(options: LexeconClientOptions);
  decide(request: DecisionRequest): Promise<Decision>;
  /**
   * The server decides a batch whole or not at all: an invalid request
   * rejects the call (`LexeconRequestError`, `.field` = `requests[i].…`).
   */
  decideBatch(requests: DecisionRequest[]): Promise<Decision[]>;
  verifyToken(token: string, expect?: { tool?: string; actor?: string }): Promise<TokenVerification>;
  /** Null when the server has no entry with this hash. */
  getLedgerEntry(entryHash: string): Promise<LedgerEntry | null>;
}
