// Every error the package throws is a LexeconError with a stable `code`.
// The codes are the engine's and the HTTP API's (`invalid_request`,
// `invalid_policy`, `storage`, `ledger_corrupt`, …), so code that handles an
// in-process error handles the same error from a server.
import { knownOptions } from "./options.js";

/** Base class: `code` is stable and machine-readable, `message` is for people. */
export class LexeconError extends Error {
  /**
   * @param {string} message
   * @param {{ code?: string, status?: number, detail?: unknown, cause?: unknown }} [options]
   */
  constructor(message, options = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LexeconError";
    this.code = options.code ?? "lexecon";
    if (options.status !== undefined) this.status = options.status;
    if (options.detail !== undefined) this.detail = options.detail;
  }
}

/** A request that cannot be decided (a 400, not a denial). `field` names the culprit. */
export class LexeconRequestError extends LexeconError {
  constructor(message, options = {}) {
    super(message, { code: "invalid_request", ...options });
    this.name = "LexeconRequestError";
    this.field = options.field ?? "request";
  }
}

/** A policy that does not load: `path` (`relations[1].type`), `line`, `column`. */
export class LexeconPolicyError extends LexeconError {
  constructor(message, options = {}) {
    super(message, { code: "invalid_policy", ...options });
    this.name = "LexeconPolicyError";
    this.path = options.path ?? "policy";
    this.line = options.line ?? null;
    this.column = options.column ?? null;
  }
}

/** The ledger storage failed or refused an entry: nothing was acknowledged. */
export class LexeconStorageError extends LexeconError {
  constructor(message, options = {}) {
    super(message, { code: "storage", ...options });
    this.name = "LexeconStorageError";
  }
}

/** The stored ledger does not continue the chain this node knows (altered, forked or damaged). */
export class LexeconLedgerError extends LexeconError {
  constructor(message, options = {}) {
    super(message, { code: "ledger_corrupt", ...options });
    this.name = "LexeconLedgerError";
  }
}

/** Bad options to `Lexecon.create`, `fileStorage`, `LexeconClient`, `governed`. */
export class LexeconConfigError extends LexeconError {
  constructor(message, options = {}) {
    super(message, { code: "invalid_config", ...options });
    this.name = "LexeconConfigError";
  }
}

/** Thrown by `governed` tools when the decision is `deny` or `escalate`. */
export class LexeconDeniedError extends LexeconError {
  /**
   * @param {string} tool
   * @param {Record<string, any>} decision
   */
  constructor(tool, decision) {
    const verdict = decision?.decision ?? "deny";
    const reason = decision?.reason ?? "denied";
    super(`tool \`${tool}\` was not allowed (${verdict}): ${reason}`, {
      code: verdict === "escalate" ? "escalated" : "denied",
    });
    this.name = "LexeconDeniedError";
    this.tool = tool;
    this.verdict = verdict;
    this.reason = reason;
    this.decision = decision;
  }
}

/** A Lexecon server answered with a 4xx or 5xx that has no more specific class. */
export class LexeconHttpError extends LexeconError {
  constructor(message, options = {}) {
    super(message, options);
    this.name = "LexeconHttpError";
  }
}

/** A Lexecon server did not answer within `timeoutMs`. */
export class LexeconTimeoutError extends LexeconError {
  constructor(message, options = {}) {
    super(message, { code: "timeout", ...options });
    this.name = "LexeconTimeoutError";
  }
}

/** A Lexecon server could not be reached at all. */
export class LexeconNetworkError extends LexeconError {
  constructor(message, options = {}) {
    super(message, { code: "network", ...options });
    this.name = "LexeconNetworkError";
  }
}

/**
 * The `tool` / `actor` a token must name, checked before they reach the
 * engine (which takes strings only). Keys outside `known` are refused.
 * @param {unknown} expect
 * @param {string[]} [known] the option names the caller takes
 * @returns {{ tool: string | undefined, actor: string | undefined }}
 */
export function tokenExpectations(expect, known = ["tool", "actor"]) {
  const o = knownOptions(
    expect,
    "the token check",
    known,
    " ({ tool?, actor? })",
    (message, field) => new LexeconRequestError(message, { field }),
    (key) =>
      key === "publicKey" ? "; this checks with this node's own key: verify another node's token with verifyToken(token, { publicKey })" : "",
  );
  /** @param {"tool" | "actor"} field */
  const text = (field) => {
    const v = o[field];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string") {
      throw new LexeconRequestError(`${field} must be a string, got ${typeof v}`, { field });
    }
    return v;
  };
  return { tool: text("tool"), actor: text("actor") };
}

/**
 * Maps a code (from the engine or a server's `{"error": code}`) to its class.
 * @param {string} code
 * @param {string} message
 * @param {Record<string, any>} [options]
 * @param {typeof LexeconError} [fallback]
 */
export function errorFromCode(code, message, options = {}, fallback = LexeconError) {
  switch (code) {
    case "invalid_request":
    case "batch_too_large":
      return new LexeconRequestError(message, { ...options, code });
    case "invalid_policy":
      return new LexeconPolicyError(message, options);
    case "storage":
    case "ledger_contention":
      return new LexeconStorageError(message, { ...options, code });
    case "ledger_corrupt":
      return new LexeconLedgerError(message, options);
    case "invalid_config":
      return new LexeconConfigError(message, options);
    default:
      return new fallback(message, { ...options, code });
  }
}

/**
 * Turns what the wasm engine threw (an Error with `code` and maybe
 * `path`/`line`/`column`/`field`) into a LexeconError.
 * @param {unknown} e
 */
export function fromEngine(e) {
  if (e instanceof LexeconError) return e;
  const err = /** @type {any} */ (e);
  if (err && typeof err === "object" && typeof err.code === "string") {
    const options = {};
    for (const key of ["path", "line", "column", "field"]) {
      if (err[key] !== undefined) options[key] = err[key];
    }
    return errorFromCode(err.code, String(err.message), options);
  }
  // A trap or an unexpected throw: never let it pass as an allow.
  return new LexeconError(`engine failure: ${err?.message ?? String(err)}`, { code: "internal", cause: e });
}
