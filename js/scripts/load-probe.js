// One fresh process's `import("lexecon")`, for `npm run bench`: an ES module
// program (Node's module loader is already running, as in any ESM app) times
// the import (module load + wasm compile + instantiate), then the first
// `Lexecon.create`. Prints one JSON line.
const c0 = process.cpuUsage();
const t0 = performance.now();
const m = await import("lexecon");
const t1 = performance.now();
const c = process.cpuUsage(c0);
await m.Lexecon.create({ nodeId: "x" });
const t2 = performance.now();
console.log(JSON.stringify({ load: t1 - t0, cpu: (c.user + c.system) / 1000, create: t2 - t1 }));
