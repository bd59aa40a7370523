// `lexecon/init`: nothing works before init(), everything after.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { Lexecon, init, isInitialized } from "lexecon/init";

assert.equal(isInitialized(), false);
await assert.rejects(Lexecon.create({ nodeId: "x" }), (e) => e.code === "not_initialized");
const bytes = await readFile(new URL("../../dist/wasm/lexecon_js_bg.wasm", import.meta.url));
await init(await WebAssembly.compile(bytes));
assert.equal(isInitialized(), true);
const gov = await Lexecon.create({ nodeId: "x", policy: { name: "p", mode: "permissive", relations: [] } });
const d = await gov.decide({ actor: "a", proposed_action: "p", tool: "t", user_intent: "u", risk_level: 1 });
console.log(JSON.stringify({ allowed: d.allowed }));
