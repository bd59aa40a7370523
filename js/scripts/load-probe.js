// One fresh process's `import("lexecon")`, for `npm run bench`: an ES module
// program (Node's module loader is already running, as in any ESM app) times
// the import (module load + wasm compile + instantiate), then the first
// `Lexecon.create` and the first decision (V8 compiles each wasm function on
// its first call, so a process's first calls are its slowest). Prints one
// JSON line.
const c0 = process.cpuUsage();
const t0 = performance.now();
const m = await import("lexecon");
const t1 = performance.now();
const c = process.cpuUsage(c0);
const gov = await m.Lexecon.create({ nodeId: "x" });
const t2 = performance.now();
await gov.decide({ actor: "model", proposed_action: "Execute web_search", tool: "web_search", user_intent: "Research", risk_level: 1 });
const t3 = performance.now();
console.log(JSON.stringify({ load: t1 - t0, cpu: (c.user + c.system) / 1000, create: t2 - t1, firstDecide: t3 - t2 }));
