// A client for a Lexecon server over `fetch` (Node >= 18, Workers, Deno,
// Vercel Edge, browsers). It needs no WebAssembly.

import {
  LexeconConfigError,
  LexeconError,
  LexeconHttpError,
  LexeconNetworkError,
  LexeconRequestError,
  LexeconTimeoutError,
  errorFromCode,
  tokenExpectations,
} from "./errors.js";

/** The longest delay `setTimeout` honours (2^31 - 1 ms, ~24.8 days). */
const MAX_TIMEOUT_MS = 2 ** 31 - 1;

export class LexeconClient {
  #base;
  #apiKey;
  #timeoutMs;
  #fetch;
  #headers;

  /**
   * @param {import("../types/client.js").LexeconClientOptions} options
   */
  constructor(options) {
    const o = options ?? /** @type {any} */ ({});
    if (typeof o.baseUrl !== "string" && !(o.baseUrl instanceof URL)) {
      throw new LexeconConfigError("baseUrl must be a URL string");
    }
    let base;
    try {
      base = new URL(String(o.baseUrl));
    } catch {
      throw new LexeconConfigError(`baseUrl \`${o.baseUrl}\` is not a URL`);
    }
    if (!base.pathname.endsWith("/")) base.pathname += "/";
    this.#base = base;
    this.#apiKey = o.apiKey;
    // It goes into a header: refuse what no header can carry now, not as a
    // network error on the first call.
    if (this.#apiKey !== undefined && this.#apiKey !== null && (typeof this.#apiKey !== "string" || /[\r\n\0]/.test(this.#apiKey))) {
      throw new LexeconConfigError("apiKey must be a string without line breaks or NUL");
    }
    // An empty key (an unset environment variable) would send no
    // Authorization header at all: leave apiKey out to mean that.
    if (this.#apiKey === "") throw new LexeconConfigError("apiKey is empty: pass the server's key, or leave apiKey out for a server without one");
    this.#timeoutMs = o.timeoutMs ?? 10_000;
    // setTimeout fires at once for delays past 2^31 - 1 ms; Infinity means none.
    if (typeof this.#timeoutMs !== "number" || !(this.#timeoutMs > 0) || (Number.isFinite(this.#timeoutMs) && this.#timeoutMs > MAX_TIMEOUT_MS)) {
      throw new LexeconConfigError(`timeoutMs must be a positive number of milliseconds, at most ${MAX_TIMEOUT_MS} (Infinity: no timeout)`);
    }
    this.#fetch = o.fetch ?? globalThis.fetch;
    if (typeof this.#fetch !== "function") {
      throw new LexeconConfigError("no global fetch: pass `fetch` in the options");
    }
    this.#headers = o.headers ?? {};
  }

  /**
   * POST /decide.
   * @param {import("../types/index.js").DecisionRequest} request
   * @returns {Promise<import("../types/index.js").Decision>}
   */
  decide(request) {
    return this.#call("POST", "decide", request);
  }

  /**
   * POST /decide/batch.
   * @param {import("../types/index.js").DecisionRequest[]} requests
   */
  async decideBatch(requests) {
    const body = await this.#call("POST", "decide/batch", { requests });
    if (!body || !Array.isArray(body.decisions)) {
      throw new LexeconHttpError("server answered /decide/batch without a `decisions` array", { code: "bad_response" });
    }
    return body.decisions;
  }

  /**
   * POST /tokens/verify.
   * @param {string} token
   * @param {{ tool?: string, actor?: string }} [expect]
   */
  async verifyToken(token, expect = {}) {
    const { tool, actor } = tokenExpectations(expect);
    /** @type {Record<string, string>} */
    const body = { token };
    if (tool !== undefined) body.tool = tool;
    if (actor !== undefined) body.actor = actor;
    return this.#call("POST", "tokens/verify", body);
  }

  /**
   * GET /ledger/entries/{hash}; null when the server has no such entry.
   * @param {string} entryHash
   */
  async getLedgerEntry(entryHash) {
    // Checked here as the server checks it: `..` would otherwise address
    // another route.
    if (typeof entryHash !== "string" || !/^[0-9a-fA-F]{64}$/.test(entryHash)) {
      throw new LexeconRequestError("expected a ledger entry hash: 64 hexadecimal digits", { field: "hash" });
    }
    try {
      return await this.#call("GET", `ledger/entries/${encodeURIComponent(entryHash)}`);
    } catch (e) {
      // Only the server's own answer means "no such entry": a 404 from a
      // wrong base URL or a proxy is an error, not an empty audit record.
      if (e instanceof LexeconError && e.status === 404 && e.code === "not_found") return null;
      throw e;
    }
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   */
  async #call(method, path, body) {
    const url = new URL(path, this.#base);
    /** @type {Record<string, string>} */
    const headers = { accept: "application/json", ...this.#headers };
    if (this.#apiKey) {
      // The key replaces an Authorization header given in `headers`, in any case.
      for (const name of Object.keys(headers)) if (name.toLowerCase() === "authorization") delete headers[name];
      headers.authorization = `Bearer ${this.#apiKey}`;
    }
    let payload;
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      try {
        payload = JSON.stringify(body);
      } catch (e) {
        throw new LexeconRequestError(`request is not JSON: ${/** @type {any} */ (e)?.message ?? e}`);
      }
    }
    const controller = new AbortController();
    let timedOut = false;
    const timer = Number.isFinite(this.#timeoutMs)
      ? setTimeout(() => {
          timedOut = true;
          controller.abort();
        }, this.#timeoutMs)
      : undefined;
    try {
      let response;
      try {
        response = await this.#fetch(url, { method, headers, body: payload, signal: controller.signal });
      } catch (e) {
        if (timedOut) {
          throw new LexeconTimeoutError(`${method} ${url.pathname} did not answer within ${this.#timeoutMs} ms`, { cause: e });
        }
        throw new LexeconNetworkError(`${method} ${url.pathname} failed: ${/** @type {any} */ (e)?.message ?? e}`, { cause: e });
      }
      let text;
      try {
        text = await response.text();
      } catch (e) {
        if (timedOut) {
          throw new LexeconTimeoutError(`${method} ${url.pathname} did not answer within ${this.#timeoutMs} ms`, { cause: e });
        }
        throw new LexeconNetworkError(`${method} ${url.pathname}: reading the answer failed`, { cause: e });
      }
      let json;
      try {
        json = text === "" ? null : JSON.parse(text);
      } catch {
        json = undefined;
      }
      if (!response.ok) {
        const code = typeof json?.error === "string" ? json.error : `http_${response.status}`;
        const detail = json?.detail;
        const said = typeof detail === "string" ? detail : detail !== undefined ? JSON.stringify(detail) : text.slice(0, 200);
        const message = `${method} ${url.pathname}: ${response.status} ${code}${said ? `: ${said}` : ""}`;
        /** @type {Record<string, any>} */
        const options = { status: response.status, detail };
        // The Lexecon server puts them beside `detail`; other servers may nest them in it.
        for (const key of ["field", "path", "line", "column"]) {
          if (json && typeof json === "object" && json[key] !== undefined) options[key] = json[key];
          else if (detail && typeof detail === "object" && key in detail) options[key] = detail[key];
        }
        const error = errorFromCode(code, message, options, LexeconHttpError);
        const retryAfter = retryAfterSeconds(response.headers.get("retry-after"));
        if (retryAfter !== undefined) /** @type {any} */ (error).retryAfter = retryAfter;
        throw error;
      }
      // Every endpoint answers a JSON object.
      if (json === undefined || json === null || typeof json !== "object" || Array.isArray(json)) {
        const what = json === undefined ? "not JSON" : text === "" ? "empty" : "not a JSON object";
        throw new LexeconHttpError(`${method} ${url.pathname}: the answer is ${what}`, { code: "bad_response", status: response.status });
      }
      return json;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * `Retry-After` in seconds: delay-seconds, or an HTTP-date (RFC 9110) as
 * the seconds from now until then (0 when past); undefined when absent or
 * unreadable.
 * @param {string | null} value
 */
function retryAfterSeconds(value) {
  if (value === null || value.trim() === "") return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}
