// `lexecon/init`: nothing works before init(), everything after.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { Lexecon, LexeconError, fileStorage, init, initSync, isInitialized } from "lexecon/init";

assert.equal(isInitialized(), false);
await assert.rejects(Lexecon.create({ nodeId: "x" }), (e) => e.code === "not_initialized");
// What is not Lexecon's wasm is refused with a LexeconError, and init can be retried.
const notWasm = (e) => e instanceof LexeconError && e.code === "wasm_init" && /Lexecon('s)? engine/.test(e.message);
await assert.rejects(init(new Uint8Array([1, 2, 3])), notWasm);
assert.throws(() => initSync(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])), notWasm, "a wasm module without Lexecon's exports");
// A wasm Response that is not Lexecon's engine: refused, and the glue keeps
// nothing of it (a second init with the right module must work).
const foreign = new Response(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]), { headers: { "content-type": "application/wasm" } });
await assert.rejects(init(foreign), notWasm);
assert.equal(isInitialized(), false);
// This entry has no file system; the error says where fileStorage is.
assert.throws(() => fileStorage("/tmp/x.db"), /lexecon\/file/);
const bytes = await readFile(new URL("../../dist/wasm/lexecon_js_bg.wasm", import.meta.url));
await init(new Response(bytes, { headers: { "content-type": "application/wasm" } }));
assert.equal(isInitialized(), true);
const gov = await Lexecon.create({ nodeId: "x", policy: { name: "p", mode: "permissive", relations: [] } });
const d = await gov.decide({ actor: "a", proposed_action: "p", tool: "t", user_intent: "u", risk_level: 1 });
console.log(JSON.stringify({ allowed: d.allowed }));
