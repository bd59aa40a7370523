// governed(toolName, fn, { gov | client, … }): decide first, then call.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Lexecon, LexeconConfigError, LexeconDeniedError, governed } from "lexecon";
import { guidePolicy } from "./helpers.js";

test("allowed: fn gets the args, the token, the decision and the framework's context", async () => {
  const gov = await Lexecon.create({ nodeId: "g", policy: guidePolicy() });
  let seen;
  const search = governed("web_search", (args, ctx) => {
    seen = { args, ctx };
    return `results for ${args.query}`;
  }, { gov, userIntent: (a) => `Research ${a.query}` });
  assert.equal(search.name, "governed_web_search");
  assert.equal(await search({ query: "wasm" }, { toolCallId: "call_1" }), "results for wasm");
  assert.deepEqual(seen.args, { query: "wasm" });
  assert.equal(seen.ctx.toolCallId, "call_1");
  assert.match(seen.ctx.capabilityToken, /^lxc2\./);
  assert.equal(seen.ctx.decision.allowed, true);
  const entry = await gov.getLedgerEntry(seen.ctx.decision.ledger_entry_hash);
  assert.equal((entry.payload.record ?? entry.payload).user_intent, "Research wasm");
  assert.equal((await gov.verifyToken(seen.ctx.capabilityToken, { tool: "web_search" })).valid, true);
});

test("denied and escalated: LexeconDeniedError with the reason; fn is never called", async () => {
  const gov = await Lexecon.create({ nodeId: "g", policy: guidePolicy() });
  let called = 0;
  const exec = governed("execute", () => called++, { gov, riskLevel: 5 });
  await assert.rejects(exec({ cmd: "ls" }), (e) => {
    assert.ok(e instanceof LexeconDeniedError);
    assert.equal(e.code, "denied");
    assert.equal(e.verdict, "deny");
    assert.match(e.reason, /forbid/i);
    assert.equal(e.decision.allowed, false);
    assert.equal(e.tool, "execute");
    return true;
  });
  const risky = governed("web_search", () => called++, { gov, riskLevel: 4 });
  await assert.rejects(risky({}), (e) => e instanceof LexeconDeniedError && e.code === "escalated" && /confirmation/.test(e.reason));
  assert.equal(called, 0);
});

test("bad requests and bad options fail loudly, never as an allow", async () => {
  const gov = await Lexecon.create({ nodeId: "g", policy: guidePolicy() });
  const bad = governed("web_search", () => "ran", { gov, riskLevel: 9 });
  await assert.rejects(bad({}), (e) => e.code === "invalid_request" && e.field === "risk_level");
  assert.throws(() => governed("x", () => 1, {}), LexeconConfigError);
  assert.throws(() => governed("", () => 1, { gov }), LexeconConfigError);
  assert.throws(() => governed("x", null, { gov }), LexeconConfigError);
  // A misspelt option would fall back to its default (risk 1) and let the
  // call through: refused when the tool is wrapped.
  assert.throws(() => governed("x", () => 1, { gov, risk_level: 5 }), (e) => {
    assert.ok(e instanceof LexeconConfigError, String(e));
    assert.match(e.message, /unknown option `risk_level` for governed \(known: gov, client, riskLevel, .*\); did you mean `riskLevel`\?$/);
    return true;
  });
  assert.throws(() => governed("x", () => 1, { gov, risklevel: 5 }), /unknown option `risklevel`/);
});

test("policyMode and tokenTtl may be functions of the arguments, like every other option", async () => {
  const gov = await Lexecon.create({ nodeId: "g", policy: { ...guidePolicy(), mode: "permissive" } });
  // Permissive mode allows a tool no term names; the call's strict mode does not.
  const loose = governed("fetch_url", async () => "fetched", { gov });
  assert.equal(await loose({}), "fetched");
  const strict = governed("fetch_url", async () => "fetched", { gov, policyMode: (a) => a.mode });
  await assert.rejects(strict({ mode: "strict" }), LexeconDeniedError);
  assert.equal(await strict({ mode: "permissive" }), "fetched");
  const short = governed("web_search", async (_a, { decision }) => decision.capability_token, { gov, tokenTtl: (a) => a.ttl });
  const token = await short({ ttl: 10 });
  assert.equal(token.expires_at - token.issued_at, 10);
});
