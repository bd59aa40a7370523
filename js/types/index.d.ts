// Types for the npm package `lexecon`. Decision, request and token objects
// use the same snake_case field names as the HTTP API and the Rust core.

export * from "./client.js";

/** A request to run a tool. */
export interface DecisionRequest {
  /** Caller's id; generated (`req_…`) when absent. */
  request_id?: string;
  /** Who wants to act (`model`, or a term id such as `actor:model`). */
  actor: string;
  /** What the agent says it will do (`Execute web_search`). */
  proposed_action: string;
  /** The tool to call (`web_search`). */
  tool: string;
  /** Why the user wants it (`Research`). */
  user_intent: string;
  /** 1 (harmless) to 5 (critical). */
  risk_level: 1 | 2 | 3 | 4 | 5 | number;
  /** Data classes touched, besides those of the tool's term. */
  data_classes?: string[];
  /** Facts for conditions (`user_approved`, `purpose`, `user_id`). */
  context?: Record<string, unknown>;
  /** Ask for strict evaluation (a request can never loosen a policy). */
  policy_mode?: "strict" | "permissive";
  /** Requested token lifetime in seconds, at least 1 (capped by the node). */
  token_ttl?: number;
}

export type Verdict = "permit" | "deny" | "escalate";

/** What a capability token grants. */
export interface TokenClaims {
  token_id: string;
  actor: string;
  tool: string;
  action: string;
  decision_hash: string;
  policy_version_hash: string;
  /** Unix seconds. */
  issued_at: number;
  /** Unix seconds; invalid from this instant on. */
  expires_at: number;
  key_id: string;
  node_id: string;
}

/** A token with its claims; present `token` (`lxc2.…`) to the tool. */
export interface CapabilityToken extends TokenClaims {
  token: string;
}

/** A signed decision, recorded in the ledger before it is returned. */
export interface Decision {
  request_id: string;
  decision_id: string;
  /** True only for `permit`. */
  allowed: boolean;
  decision: Verdict;
  /** Why, naming the deciding relation or constraint. */
  reason: string;
  /** Ids of every relation and constraint that applied. */
  reasoning: string[];
  policy_version_hash: string;
  decision_hash: string;
  /** Present only when allowed. */
  capability_token: CapabilityToken | null;
  ledger_entry_hash: string;
  ledger_index: number;
  /** Base64url Ed25519 signature. */
  signature: string;
  /** `YYYY-MM-DDTHH:MM:SS.mmmZ`. */
  timestamp: string;
}

/** A batch slot whose request did not validate. */
export interface BatchItemError {
  error: { code: "invalid_request"; field: string; message: string };
}

/** What loading a policy did. */
export interface PolicyLoaded {
  name: string;
  version: string;
  mode: "strict" | "permissive";
  policy_hash: string;
  terms: number;
  relations: number;
  constraints: number;
  ledger_index: number;
  ledger_entry_hash: string;
  /** False when the policy was already active and nothing was written. */
  recorded: boolean;
}

/** The outcome of verifying a capability token. */
export interface TokenVerification {
  valid: boolean;
  claims?: TokenClaims;
  /** `malformed`, `unknown_key`, `bad_signature`, `expired`, `wrong_tool`, `wrong_actor`. */
  error?: string;
  /** The error in words. */
  detail?: string;
}

/** The outcome of walking the stored chain. */
export interface LedgerReport {
  valid: boolean;
  /** Entries that verified (all of them when valid). */
  entries: number;
  /** Hash of the last good entry. */
  headHash: string;
  /** Index of the first bad entry. */
  firstInvalid?: number;
  failure?: {
    index: number;
    /**
     * `bad_signature` (a decision not signed by this node's key, or altered)
     * and `policy_mismatch` (a decision that names another policy than the
     * latest policy load before it): only with `verifyLedger({ signatures: true })`.
     */
    kind: "malformed" | "hash_mismatch" | "index_mismatch" | "broken_link" | "bad_genesis" | "missing" | "bad_signature" | "policy_mismatch";
    message: string;
  };
}

/** A parsed ledger entry. */
export interface LedgerEntry {
  entry_hash: string;
  /** A decision entry's `payload.decision_hash`, at the top level as the server gives it. */
  decision_hash?: string;
  /** A policy load's `payload.policy_hash`, likewise. */
  policy_hash?: string;
  index: number;
  kind: "policy_load" | "decision";
  payload: Record<string, unknown>;
  prev_hash: string;
  timestamp: string;
}

type MaybePromise<T> = T | Promise<T>;

/** What `append` is told besides the bytes (adapters may key on it). */
export interface AppendMeta {
  index: number;
  entry_hash: string;
  prev_hash: string;
}

/**
 * Where the ledger lives. Every method may return a promise. `append` must
 * be durable when it resolves and resolve to the index it stored at.
 */
export interface StorageAdapter {
  append(bytes: Uint8Array, meta: AppendMeta): MaybePromise<number | bigint>;
  /** The stored bytes (or the entry's JSON text), or null past the end. */
  get(index: number): MaybePromise<Uint8Array | ArrayBuffer | string | null | undefined>;
  length(): MaybePromise<number | bigint>;
  /** Index of the entry with this hash. */
  find?(entryHash: string): MaybePromise<number | bigint | null | undefined>;
  /** Entries start..end, for faster opening. */
  getRange?(start: number, end: number): MaybePromise<Array<Uint8Array | ArrayBuffer | string>>;
}

export interface MemoryStorage extends StorageAdapter {
  append(bytes: Uint8Array, meta?: AppendMeta): number;
  get(index: number): Uint8Array | null;
  getRange(start: number, end: number): Uint8Array[];
  length(): number;
  find(entryHash: string): number | null;
}

export interface LexeconOptions {
  /** Recorded in every decision and token: 1 to 64 letters, digits, `.`, `_` or `-`, not starting with `.` or `-` (as the server's). */
  nodeId: string;
  /** Loaded after the ledger is replayed; recorded only if it is not already active. */
  policy?: object | string;
  /** Defaults to `memoryStorage()`. */
  storage?: StorageAdapter;
  /** 32-byte Ed25519 seed (bytes, 64 hex digits, or a host node's `private_key.pem` text); a fresh key when absent. */
  signingKey?: Uint8Array | string;
  /** Seconds, at least 1 (300). */
  defaultTokenTtl?: number;
  /** Seconds, at least `defaultTokenTtl` and at most 86400, one day (3600). */
  maxTokenTtl?: number;
  /**
   * Tests only: a stepping clock and a seeded random stream, as the shared
   * vectors fix them. Never in production (ids become predictable).
   */
  deterministic?: { clock: { start_ms: number; step_ms: number }; random_seed: string };
  /**
   * Verify every link of the stored ledger before opening (as the server's
   * `ledger.auto_verify`); an altered ledger then rejects with
   * `LexeconLedgerError`. Costs a full read. Default `false`: opening reads
   * only the ledger's end.
   */
  verifyOnOpen?: boolean;
}

/** An in-process Lexecon node. */
export declare class Lexecon {
  private constructor();
  /** Opens the ledger in `storage` (restoring from its end, checking each entry read; see `verifyOnOpen`), then loads `policy`. */
  static create(options: LexeconOptions): Promise<Lexecon>;
  /** Lowercase hex of the Ed25519 public key. */
  readonly publicKey: string;
  /** `ed25519:` and 16 hex digits. */
  readonly keyId: string;
  readonly nodeId: string;
  /** The committed chain head. */
  readonly head: { length: number; hash: string };
  /** Hash of the active policy, or null. */
  readonly policyHash: string | null;
  /** Resolves after the decision's ledger entry is stored; rejects (and records nothing) otherwise. */
  decide(request: DecisionRequest): Promise<Decision>;
  decideBatch(requests: DecisionRequest[]): Promise<Array<Decision | BatchItemError>>;
  loadPolicy(policy: object | string): Promise<PolicyLoaded>;
  verifyToken(token: string, expect?: { tool?: string; actor?: string }): Promise<TokenVerification>;
  /** Checks every stored entry, and the chain against this node's committed head (`head`). */
  /**
   * Checks every stored entry's hashes and links, held to this node's own
   * head. With `signatures: true`, also that every decision is signed by
   * this node's key (~40 µs an entry): a rewrite of storage that recomputes
   * every hash passes the chain check but not this one.
   */
  verifyLedger(options?: { signatures?: boolean }): Promise<LedgerReport>;
  getLedgerEntry(indexOrHash: number | string): Promise<LedgerEntry | null>;
}

export declare function memoryStorage(): MemoryStorage;

/** Node only; in other runtimes it throws `LexeconConfigError`. */
export declare function fileStorage(path: string, options?: { readOnly?: boolean }): import("./file.js").FileStorage;

/** Anything with `decide`: a `Lexecon` or a `LexeconClient`. */
export interface Decider {
  decide(request: DecisionRequest): Promise<Decision>;
}

type OrFromArgs<T, A> = T | ((args: A) => T);

export interface GovernedOptions<A> {
  gov?: Decider;
  client?: Decider;
  /** 1 when absent. */
  riskLevel?: OrFromArgs<number, A>;
  /** `model` when absent. */
  actor?: OrFromArgs<string, A>;
  /** `Call <tool>` when absent. */
  userIntent?: OrFromArgs<string, A>;
  /** `Execute <tool>` when absent. */
  proposedAction?: OrFromArgs<string, A>;
  dataClasses?: OrFromArgs<string[], A>;
  context?: OrFromArgs<Record<string, unknown>, A>;
  policyMode?: OrFromArgs<"strict" | "permissive", A>;
  tokenTtl?: OrFromArgs<number, A>;
}

/** What a governed tool function receives besides its arguments. */
export interface GovernedContext {
  /** The compact capability token (`lxc2.…`) to present to the tool's backend. */
  capabilityToken: string;
  /** The allowing decision. */
  decision: Decision;
  [frameworkOption: string]: unknown;
}

/**
 * Wraps a tool: decides first; throws `LexeconDeniedError` when denied or
 * escalated, else calls `fn(args, { capabilityToken, decision, ...frameworkContext })`.
 */
export declare function governed<A, R>(
  toolName: string,
  fn: (args: A, context: GovernedContext) => R | Promise<R>,
  options: GovernedOptions<A>,
): (args: A, context?: object) => Promise<Awaited<R>>;

/**
 * Verifies a token offline with the issuing node's public key, at `nowMs`
 * (milliseconds since the Unix epoch; default `Date.now()`). Throws
 * `LexeconConfigError` for a key or time it cannot use, `LexeconRequestError`
 * for a `tool` or `actor` that is not a string.
 */
export declare function verifyToken(
  token: string,
  options: { publicKey: string | Uint8Array; tool?: string; actor?: string; nowMs?: number },
): TokenVerification;

/** Whether the WebAssembly engine is instantiated. */
export declare function isInitialized(): boolean;

/** `prev_hash` of ledger entry 0. */
export declare const GENESIS_HASH: string;

export declare class LexeconError extends Error {
  constructor(message: string, options?: { code?: string; status?: number; detail?: unknown; cause?: unknown });
  /** Stable: `invalid_request`, `invalid_policy`, `storage`, `ledger_corrupt`, `denied`, `timeout`, … */
  readonly code: string;
  /** HTTP status, for errors from a server. */
  readonly status?: number;
  readonly detail?: unknown;
  /** Seconds, from a server's `Retry-After` (429, 503). */
  readonly retryAfter?: number;
}
export declare class LexeconRequestError extends LexeconError {
  /** The field at fault (`risk_level`), or `request`. */
  readonly field: string;
}
export declare class LexeconPolicyError extends LexeconError {
  /** JSON path (`relations[1].type`). */
  readonly path: string;
  readonly line: number | null;
  readonly column: number | null;
}
export declare class LexeconStorageError extends LexeconError {
  /** The damaged entry, for corruption. */
  readonly index?: number;
}
export declare class LexeconLedgerError extends LexeconError {}
export declare class LexeconConfigError extends LexeconError {}
export declare class LexeconDeniedError extends LexeconError {
  constructor(tool: string, decision: Decision);
  readonly tool: string;
  readonly verdict: Verdict;
  readonly reason: string;
  readonly decision: Decision;
}
export declare class LexeconHttpError extends LexeconError {}
export declare class LexeconTimeoutError extends LexeconError {}
export declare class LexeconNetworkError extends LexeconError {}
