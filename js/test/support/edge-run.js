// Runs the edge handler example with web-standard Request/Response only, in
// a process started with an edge condition (see test/edge.test.js). Prints
// one JSON line with what happened.
import assert from "node:assert/strict";
import worker from "../../examples/edge-worker.js";

const resolved = import.meta.resolve("lexecon");
const call = (body) =>
  worker.fetch(
    new Request("https://edge.example/tools/call", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
    {},
  );

const allowed = await call({ tool: "web_search", args: { query: "edge" } });
assert.equal(allowed.status, 200);
const ok = await allowed.json();
assert.equal(ok.ok, true);
assert.equal(ok.decision.allowed, true);

const denied = await call({ tool: "shell", args: { command: "id" } });
assert.equal(denied.status, 403);
const no = await denied.json();
assert.equal(no.error, "denied");

const missing = await worker.fetch(new Request("https://edge.example/nope"), {});
assert.equal(missing.status, 404);
// Only the example's own tools: not what every object inherits.
for (const tool of ["toString", "constructor", "__proto__"]) {
  const inherited = await call({ tool, args: {} });
  assert.equal(inherited.status, 404, tool);
  assert.equal((await inherited.json()).error, "unknown_tool");
}

// A Durable-Object-like async store: the decisions land there.
const map = new Map();
const store = {
  async get(k) {
    return map.get(k);
  },
  async put(entries) {
    for (const [k, v] of Object.entries(entries)) map.set(k, v);
  },
};
// Its first read fails once: that request answers 503 (fail closed), and the
// next one opens the node and decides.
let flaky = true;
const flakyStore = {
  ...store,
  async get(k) {
    if (flaky) {
      flaky = false;
      throw new Error("storage briefly unavailable");
    }
    return store.get(k);
  },
};
const retried = await import("../../examples/edge-worker.js?retry");
const tool = () =>
  new Request("https://edge.example/tools/call", { method: "POST", body: JSON.stringify({ tool: "web_search", args: { query: "x" } }) });
const first = await retried.default.fetch(tool(), { LEDGER: flakyStore });
assert.equal(first.status, 503);
assert.equal((await first.json()).error, "storage");
assert.equal((await retried.default.fetch(tool(), { LEDGER: flakyStore })).status, 200);
map.clear();

const mod = await import("../../examples/edge-worker.js?durable");
const viaDo = await mod.default.fetch(
  new Request("https://edge.example/tools/call", { method: "POST", body: JSON.stringify({ tool: "web_search", args: { query: "x" } }) }),
  { LEDGER: store, LEXECON_SIGNING_KEY: "07".repeat(32) },
);
assert.equal(viaDo.status, 200);
assert.equal(map.get("length"), 2);

console.log(JSON.stringify({ resolved, allowed: ok.decision.decision, denied: no.reason, durableEntries: map.get("length") }));
