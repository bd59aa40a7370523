// `lexecon/init` given a WebAssembly.Module compiled in another realm, as
// Vercel's edge-runtime and Next.js's edge sandbox hand one to the function's
// vm context; the caller's module is left as it was. argv[2]: `init` or
// `initSync` (one per process: instantiating is once per process).
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { runInNewContext } from "node:vm";
import { Lexecon, init, initSync } from "lexecon/init";

const bytes = await readFile(new URL("../../dist/wasm/lexecon_js_bg.wasm", import.meta.url));
const foreign = runInNewContext("new WebAssembly.Module(bytes)", { bytes });
assert.equal(foreign instanceof WebAssembly.Module, false);
const proto = Object.getPrototypeOf(foreign);
if (process.argv[2] === "initSync") initSync(foreign);
else await init(foreign);
assert.equal(Object.getPrototypeOf(foreign), proto);
const gov = await Lexecon.create({ nodeId: "x", policy: { name: "p", mode: "permissive", relations: [] } });
const d = await gov.decide({ actor: "a", proposed_action: "p", tool: "t", user_intent: "u", risk_level: 1 });
console.log(JSON.stringify({ allowed: d.allowed }));
