// LexeconClient against a small Node HTTP server that answers like the
// Lexecon server (paths, bodies, `{"error": code, "detail"}`, bearer auth),
// and, when a `lexecon` binary is around, against the real server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import {
  Lexecon,
  LexeconClient,
  LexeconConfigError,
  LexeconHttpError,
  LexeconNetworkError,
  LexeconRequestError,
  LexeconTimeoutError,
  LexeconDeniedError,
  governed,
} from "lexecon";
import { LexeconClient as SubpathClient } from "lexecon/client";
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execute, guidePolicy, repoRoot, search } from "./helpers.js";

const API_KEY = "test-key";
/** @type {import("node:http").Server} */
let server;
let baseUrl;
/** @type {Lexecon} */
let gov;
const seen = [];

async function readJson(req) {
  let body = "";
  for await (const chunk of req) body += chunk;
  return body ? JSON.parse(body) : undefined;
}

function send(res, status, body) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

before(async () => {
  gov = await Lexecon.create({ nodeId: "mock-server", policy: guidePolicy() });
  server = createServer(async (req, res) => {
    seen.push({ method: req.method, url: req.url, auth: req.headers.authorization });
    if (req.headers.authorization !== `Bearer ${API_KEY}`) {
      return send(res, 401, { error: "unauthorized", detail: "missing or wrong API key" });
    }
    try {
      if (req.method === "POST" && req.url === "/decide") {
        return send(res, 200, await gov.decide(await readJson(req)));
      }
      if (req.method === "POST" && req.url === "/decide/batch") {
        return send(res, 200, { decisions: await gov.decideBatch((await readJson(req)).requests) });
      }
      if (req.method === "POST" && req.url === "/tokens/verify") {
        const { token, tool, actor } = await readJson(req);
        return send(res, 200, await gov.verifyToken(token, { tool, actor }));
      }
      const m = /^\/ledger\/entries\/([0-9a-f]+)$/.exec(req.url ?? "");
      if (req.method === "GET" && m) {
        const entry = await gov.getLedgerEntry(m[1]);
        return entry ? send(res, 200, entry) : send(res, 404, { error: "not_found", detail: "no such entry" });
      }
      if (req.url === "/slow") return; // never answers
      if (req.url === "/boom") return send(res, 503, { error: "storage", detail: "ledger storage unavailable" });
      if (req.url === "/empty") {
        res.writeHead(200, { "content-type": "application/json" });
        return res.end();
      }
      if (req.url === "/null") return send(res, 200, null);
      if (req.url === "/array") return send(res, 200, [1, 2]);
      if (req.url === "/limited-until") {
        res.writeHead(503, { "content-type": "application/json", "retry-after": new Date(Date.now() + 30_000).toUTCString() });
        return res.end(JSON.stringify({ error: "storage", detail: "ledger storage unavailable" }));
      }
      if (req.url === "/limited") {
        res.writeHead(429, { "content-type": "application/json", "retry-after": "7" });
        return res.end(JSON.stringify({ error: "rate_limited", detail: "too many requests" }));
      }
      if (req.url === "/html") {
        res.writeHead(502, { "content-type": "text/html" });
        return res.end("<h1>bad gateway</h1>");
      }
      return send(res, 404, { error: "no_route", detail: `no route for ${req.method} ${req.url}` });
    } catch (e) {
      // As the Lexecon server answers: `field` beside `detail`.
      return send(res, e.code === "invalid_request" ? 400 : 500, { error: e.code, detail: e.message, field: e.field });
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  baseUrl = `http://127.0.0.1:${server.address().port}`;
});

after(() => new Promise((r) => server.close(r)));

test("decide, decideBatch, verifyToken, getLedgerEntry over HTTP with a bearer key", async () => {
  const client = new LexeconClient({ baseUrl, apiKey: API_KEY, timeoutMs: 2000 });
  const d = await client.decide(search);
  assert.equal(d.allowed, true);
  assert.match(d.capability_token.token, /^lxc2\./);
  const batch = await client.decideBatch([search, execute]);
  assert.deepEqual(
    batch.map((x) => x.decision),
    ["permit", "deny"],
  );
  const v = await client.verifyToken(d.capability_token.token, { tool: "web_search" });
  assert.equal(v.valid, true);
  assert.equal((await client.verifyToken(d.capability_token.token, { tool: "execute" })).error, "wrong_tool");
  const entry = await client.getLedgerEntry(d.ledger_entry_hash);
  assert.equal(entry.index, d.ledger_index);
  assert.equal(await client.getLedgerEntry("0".repeat(64)), null);
  // A wrong base URL is an error, not "no such entry".
  const lost = new LexeconClient({ baseUrl: `${baseUrl}/wrong-prefix/`, apiKey: API_KEY });
  await assert.rejects(lost.getLedgerEntry(d.ledger_entry_hash), (e) => e instanceof LexeconHttpError && e.status === 404 && e.code === "no_route");
  // The key replaces an Authorization header however it is spelled.
  const keyed = new LexeconClient({ baseUrl, apiKey: API_KEY, headers: { Authorization: "Bearer other" } });
  assert.equal((await keyed.decide(search)).allowed, true);
  assert.ok(seen.every((s) => s.auth === `Bearer ${API_KEY}`));
  assert.ok(seen.some((s) => s.url === "/decide/batch"));
  const sub = new SubpathClient({ baseUrl: `${baseUrl}/`, apiKey: API_KEY });
  assert.equal((await sub.decide(execute)).allowed, false);
});

test("typed errors: 400, 401, 5xx, non-JSON, timeout, unreachable", async () => {
  const client = new LexeconClient({ baseUrl, apiKey: API_KEY, timeoutMs: 300 });
  await assert.rejects(client.decide({ actor: "model" }), (e) => {
    assert.ok(e instanceof LexeconRequestError);
    assert.equal(e.code, "invalid_request");
    assert.equal(e.status, 400);
    assert.match(e.message, /missing field/);
    assert.notEqual(e.field, "request", "the server's `field` is kept");
    assert.match(e.message, new RegExp(`missing field \`${e.field}\``));
    return true;
  });
  assert.throws(() => new LexeconClient({ baseUrl, apiKey: "k\nX-Injected: 1" }), LexeconConfigError);
  // An empty key (an unset variable) is refused, not sent as no key at all.
  assert.throws(() => new LexeconClient({ baseUrl, apiKey: "" }), /apiKey is empty/);
  // What is no entry hash never reaches the server (`..` would address another route).
  const checked = new LexeconClient({ baseUrl, apiKey: API_KEY });
  for (const bad of ["..", "", "abc", /** @type {any} */ (7)]) {
    await assert.rejects(checked.getLedgerEntry(bad), (e) => e instanceof LexeconRequestError && /64 hexadecimal digits/.test(e.message));
  }
  const anonymous = new LexeconClient({ baseUrl });
  await assert.rejects(anonymous.decide(search), (e) => e instanceof LexeconHttpError && e.status === 401 && e.code === "unauthorized");

  // A fetch that sends the call to one of the mock's failure routes.
  const special = async (path) => {
    const c = new LexeconClient({ baseUrl, apiKey: API_KEY, timeoutMs: 300, fetch: (url, init) => fetch(new URL(path, baseUrl), init) });
    return c.decide(search);
  };
  await assert.rejects(special("/boom"), (e) => e.code === "storage" && e.status === 503);
  await assert.rejects(special("/limited"), (e) => e instanceof LexeconHttpError && e.code === "rate_limited" && e.retryAfter === 7);
  // Retry-After as an HTTP-date: the seconds until then.
  await assert.rejects(special("/limited-until"), (e) => e.status === 503 && e.retryAfter >= 28 && e.retryAfter <= 31);
  await assert.rejects(special("/html"), (e) => e instanceof LexeconHttpError && e.code === "http_502" && e.status === 502);
  const t0 = Date.now();
  await assert.rejects(special("/slow"), (e) => e instanceof LexeconTimeoutError && e.code === "timeout");
  assert.ok(Date.now() - t0 < 2000);

  const closed = new LexeconClient({ baseUrl: "http://127.0.0.1:1", timeoutMs: 1000 });
  await assert.rejects(closed.decide(search), (e) => e instanceof LexeconNetworkError && e.code === "network");
  assert.throws(() => new LexeconClient({ baseUrl: "not a url" }), LexeconConfigError);

  // A 200 whose body is empty, or JSON but not an object, is not a decision.
  for (const path of ["/empty", "/null", "/array"]) {
    await assert.rejects(special(path), (e) => {
      assert.ok(e instanceof LexeconHttpError, String(e));
      assert.equal(e.code, "bad_response");
      assert.equal(e.status, 200);
      return true;
    });
  }
});

test("timeouts: Infinity waits, past setTimeout's range is refused; bad token options reject", async () => {
  // setTimeout fires at once past 2^31 - 1 ms: once, every call timed out.
  for (const timeoutMs of [2 ** 31, 1e12, 0, -5, NaN, "5000"]) {
    assert.throws(() => new LexeconClient({ baseUrl, timeoutMs }), LexeconConfigError, String(timeoutMs));
  }
  for (const timeoutMs of [Infinity, 2 ** 31 - 1]) {
    const client = new LexeconClient({ baseUrl, apiKey: API_KEY, timeoutMs });
    assert.equal((await client.decide(search)).allowed, true, String(timeoutMs));
  }
  const client = new LexeconClient({ baseUrl, apiKey: API_KEY });
  const { token } = (await client.decide(search)).capability_token;
  assert.equal((await client.verifyToken(token, null)).valid, true);
  const pending = client.verifyToken(token, { tool: 5 });
  assert.ok(pending instanceof Promise, "bad options reject; they do not throw");
  await assert.rejects(pending, (e) => e instanceof LexeconRequestError && e.field === "tool");
});

test("governed works the same over the client", async () => {
  const client = new LexeconClient({ baseUrl, apiKey: API_KEY });
  const calls = [];
  const webSearch = governed("web_search", async (args, { capabilityToken }) => {
    calls.push(capabilityToken);
    return `results for ${args.query}`;
  }, { client });
  assert.equal(await webSearch({ query: "wasm" }), "results for wasm");
  const shell = governed("execute", async () => "ran", { client, riskLevel: 5 });
  await assert.rejects(shell({ cmd: "rm -rf /" }), LexeconDeniedError);
  assert.equal(calls.length, 1);
  assert.match(calls[0], /^lxc2\./);
});

// ---------------------------------------------------------------------------
// The real Rust server (runs when a `lexecon` binary exists)
// ---------------------------------------------------------------------------

const lexecon = [
  process.env.LEXECON_BIN,
  join(repoRoot, "target/release/lexecon"),
  join(repoRoot, "target/debug/lexecon"),
].find((p) => p && existsSync(p));

test("LexeconClient against the real `lexecon server`", {
  skip: lexecon ? false : "no lexecon binary (set LEXECON_BIN or build the host)",
  timeout: 60_000,
}, async () => {
  const home = mkdtempSync(join(tmpdir(), "lexecon-server-"));
  const env = { ...process.env, LEXECON_HOME: home, LEXECON_API_KEY: API_KEY, NO_COLOR: "1" };
  const cli = (...args) => execFileSync(lexecon, ["--node-id", "n1", ...args], { env, encoding: "utf8" });
  cli("init");
  const policyFile = join(home, "policy.json");
  writeFileSync(policyFile, JSON.stringify(guidePolicy()));
  cli("policy", "load", "--file", policyFile);
  const child = spawn(lexecon, ["--node-id", "n1", "server", "--host", "127.0.0.1", "--port", "0"], { env, stdio: ["ignore", "pipe", "pipe"] });
  try {
    const url = await new Promise((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`server did not start: ${out}`)), 20_000);
      child.stdout.on("data", (chunk) => {
        out += chunk;
        const m = /listening on (\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.on("exit", (code) => reject(new Error(`server exited with ${code}: ${out}`)));
    });
    const client = new LexeconClient({ baseUrl: url, apiKey: API_KEY, timeoutMs: 5000 });
    const d = await client.decide(search);
    assert.equal(d.allowed, true);
    const batch = await client.decideBatch([search, execute]);
    assert.equal(batch[1].decision, "deny");
    assert.equal((await client.verifyToken(d.capability_token.token, { tool: "web_search" })).valid, true);
    assert.equal((await client.verifyToken(d.capability_token.token, { tool: "execute" })).valid, false);
    const entry = await client.getLedgerEntry(d.ledger_entry_hash);
    assert.ok(entry, "the entry is found by hash");
    await assert.rejects(client.decide({ actor: "model" }), (e) => e instanceof LexeconRequestError && e.status >= 400 && e.status < 500);
    await assert.rejects(new LexeconClient({ baseUrl: url }).decide(search), (e) => e instanceof LexeconHttpError && e.status === 401);
  } finally {
    child.kill("SIGTERM");
  }
});
