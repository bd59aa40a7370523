// An edge function (Cloudflare Workers / Deno Deploy / Vercel Edge module
// syntax) that gates tool calls with the in-process engine:
//
//   POST /tools/call  {"tool": "web_search", "args": {...}}
//     200 {"ok": true, "result": ..., "decision": {...}}
//     403 {"ok": false, "error": "denied" | "escalated", "reason": ...}
//
// `import { Lexecon } from "lexecon"` resolves through the package's
// conditions: `workerd` for wrangler, `edge-light` for Vercel, `deno`/default
// elsewhere; each entry hands the WebAssembly module over the way its
// runtime allows. No `fs`, no `process`.
//
// Storage: a Worker's memory lives only as long as its isolate. For an
// audit trail that survives, give the node a storage adapter over a
// strongly consistent store with one writer per ledger (a Durable Object's
// storage, a database); `durableObjectStorage` below shows the shape.
import { Lexecon, LexeconDeniedError, LexeconError, governed, memoryStorage } from "lexecon";
import { policy } from "./policy.js";

/** A storage adapter over a Durable Object's `state.storage` (async get/put). */
export function durableObjectStorage(storage) {
  return {
    async append(bytes, { index }) {
      // One writer per object, so the length read and the put cannot race.
      const length = (await storage.get("length")) ?? 0;
      if (length !== index) throw new Error(`append conflict: log holds ${length} entries, entry ${index} offered`);
      await storage.put({ [`entry:${index}`]: new TextDecoder().decode(bytes), length: index + 1 });
      return index;
    },
    async get(index) {
      return (await storage.get(`entry:${index}`)) ?? null;
    },
    async length() {
      return (await storage.get("length")) ?? 0;
    },
  };
}

const tools = {
  web_search: async ({ query }) => ({ results: [`https://example.org/?q=${encodeURIComponent(query)}`] }),
  shell: async ({ command }) => ({ output: `ran ${command}` }),
};

/** The node, opened on the first request; forgotten if opening failed, so the next request tries again. */
let node;

function openNode(env) {
  node ??= Lexecon.create({
    nodeId: env.LEXECON_NODE_ID ?? "edge-1",
    policy,
    storage: env.LEDGER ? durableObjectStorage(env.LEDGER) : memoryStorage(),
    signingKey: env.LEXECON_SIGNING_KEY, // 64 hex digits, a secret binding
  }).catch((e) => {
    node = undefined;
    throw e;
  });
  return node;
}

function json(body, status = 200) {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
}

export default {
  async fetch(request, env = {}) {
    const url = new URL(request.url);
    if (request.method !== "POST" || url.pathname !== "/tools/call") return json({ error: "not_found" }, 404);
    let gov;
    try {
      gov = await openNode(env);
    } catch (e) {
      // Storage unavailable (or a ledger that does not verify): fail closed.
      if (e instanceof LexeconError) return json({ ok: false, error: e.code, detail: e.message }, 503);
      throw e;
    }
    let call;
    try {
      call = await request.json();
    } catch {
      return json({ error: "invalid_request", detail: "body must be JSON" }, 400);
    }
    // Own properties only: `toString` and the like are not tools.
    const fn = typeof call?.tool === "string" && Object.hasOwn(tools, call.tool) ? tools[call.tool] : undefined;
    if (!fn) return json({ error: "unknown_tool", detail: `no tool \`${call?.tool}\`` }, 404);
    const risk = call.tool === "shell" ? 5 : 1;
    try {
      let decision;
      const result = await governed(call.tool, (args, ctx) => {
        decision = ctx.decision;
        return fn(args);
      }, { gov, riskLevel: risk, actor: "model" })(call.args ?? {});
      return json({ ok: true, result, decision });
    } catch (e) {
      if (e instanceof LexeconDeniedError) {
        return json({ ok: false, error: e.code, reason: e.reason, decision: e.decision }, 403);
      }
      if (e instanceof LexeconError) return json({ ok: false, error: e.code, detail: e.message }, 503);
      throw e;
    }
  },
};
