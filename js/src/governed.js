// `governed` wraps a tool function so that every call is decided first.

import { LexeconConfigError, LexeconDeniedError } from "./errors.js";
import { knownOptions } from "./options.js";

/** What `governed` takes (types/index.d.ts, `GovernedOptions`). */
const OPTIONS = ["gov", "client", "riskLevel", "actor", "userIntent", "proposedAction", "dataClasses", "context", "policyMode", "tokenTtl"];

/** @type {Record<string, string>} The request's own field names, as a user may carry them over. */
const SPELLINGS = {
  risk_level: "riskLevel",
  user_intent: "userIntent",
  proposed_action: "proposedAction",
  data_classes: "dataClasses",
  policy_mode: "policyMode",
  token_ttl: "tokenTtl",
};

/**
 * @template A, R
 * @param {string} toolName
 * @param {(args: A, context: any) => R | Promise<R>} fn
 * @param {import("../types/index.js").GovernedOptions<A>} options
 * @returns {(args: A, context?: object) => Promise<Awaited<R>>}
 */
export function governed(toolName, fn, options) {
  if (typeof toolName !== "string" || toolName === "") throw new LexeconConfigError("toolName must be a non-empty string");
  if (typeof fn !== "function") throw new LexeconConfigError("fn must be a function");
  // A misspelt option (`risk_level`, the HTTP API's spelling) would fall
  // back to its default, risk 1 say, and let a risky call through.
  const o = /** @type {any} */ (
    knownOptions(
      options,
      "governed",
      OPTIONS,
      "",
      (message) => new LexeconConfigError(message),
      (key) => (SPELLINGS[key] ? `; did you mean \`${SPELLINGS[key]}\`?` : ""),
    )
  );
  const decider = o.gov ?? o.client;
  if (!decider || typeof decider.decide !== "function") {
    throw new LexeconConfigError("governed needs `gov` (a Lexecon) or `client` (a LexeconClient)");
  }
  /**
   * @param {any} value
   * @param {A} args
   */
  const pick = (value, args) => (typeof value === "function" ? value(args) : value);

  /**
   * @param {A} args
   * @param {object} [context] what the framework passes (tool call id, abort signal…), passed on
   */
  const wrapped = async (args, context) => {
    /** @type {Record<string, unknown>} */
    const request = {
      actor: pick(o.actor, args) ?? "model",
      proposed_action: pick(o.proposedAction, args) ?? `Execute ${toolName}`,
      tool: toolName,
      user_intent: pick(o.userIntent, args) ?? `Call ${toolName}`,
      risk_level: pick(o.riskLevel, args) ?? 1,
    };
    const dataClasses = pick(o.dataClasses, args);
    if (dataClasses !== undefined) request.data_classes = dataClasses;
    const ctx = pick(o.context, args);
    if (ctx !== undefined) request.context = ctx;
    const policyMode = pick(o.policyMode, args);
    if (policyMode !== undefined) request.policy_mode = policyMode;
    const tokenTtl = pick(o.tokenTtl, args);
    if (tokenTtl !== undefined) request.token_ttl = tokenTtl;
    const decision = await decider.decide(/** @type {any} */ (request));
    if (!decision || decision.allowed !== true) {
      throw new LexeconDeniedError(toolName, decision);
    }
    const extra = context !== null && typeof context === "object" ? context : {};
    return fn(args, { ...extra, capabilityToken: decision.capability_token?.token, decision });
  };
  Object.defineProperty(wrapped, "name", { value: `governed_${toolName}` });
  return wrapped;
}
