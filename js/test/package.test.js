// The package as a user gets it: `npm pack`, install the tarball into a
// fresh project (offline: it has no dependencies), import `lexecon` from
// there, and type-check a typed usage file against the installed .d.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { jsRoot, packAndInstall, quiet } from "./helpers.js";

test("npm pack → install the tarball → import lexecon", { timeout: 120_000 }, () => {
  const { dir, project, files } = packAndInstall();
  assert.ok(files.includes("dist/wasm/lexecon_js_bg.wasm"), "the wasm is in the tarball (run scripts/build-js.sh first)");
  assert.ok(files.includes("dist/wasm/lexecon_js.js"));
  assert.ok(files.includes("types/index.d.ts"));
  assert.ok(files.includes("src/entry/node.js"));
  assert.ok(files.includes("lib/entry/node.js"), "the Node build is in the tarball");
  assert.ok(!files.some((f) => f.startsWith("test/") || f.startsWith("bindings/") || f.startsWith("examples/")), files.join(" "));

  writeFileSync(
    join(project, "main.js"),
    `import { Lexecon, memoryStorage, fileStorage, LexeconClient, governed, LexeconDeniedError } from "lexecon";
import { tmpdir } from "node:os";
import { join } from "node:path";
const policy = { name: "p", mode: "strict", relations: [{ type: "permits", subject: "model", action: "action:web_search", object: "*" }] };
const gov = await Lexecon.create({ nodeId: "app-1", policy, storage: memoryStorage() });
const d = await gov.decide({ actor: "model", proposed_action: "Execute web_search", tool: "web_search", user_intent: "Research", risk_level: 1 });
const file = fileStorage(join(${JSON.stringify(dir)}, "ledger.db"));
const onDisk = await Lexecon.create({ nodeId: "app-1", policy, storage: file });
await onDisk.decide({ actor: "model", proposed_action: "x", tool: "web_search", user_intent: "y", risk_level: 1 });
const shell = governed("shell", async () => "ran", { gov });
let denied = false;
try { await shell({}); } catch (e) { denied = e instanceof LexeconDeniedError; }
console.log(JSON.stringify({ allowed: d.allowed, token: d.capability_token.token.slice(0, 5), ledger: (await gov.verifyLedger()).valid,
  file: (await file.length()), denied, client: typeof LexeconClient }));
`,
  );
  const out = JSON.parse(execFileSync(process.execPath, ["main.js"], { ...quiet, cwd: project }));
  assert.deepEqual(out, { allowed: true, token: "lxc1.", ledger: true, file: 2, denied: true, client: "function" });

  // The shipped .d.ts, from the installed package, with a typed usage file.
  mkdirSync(join(project, "src"));
  copyFileSync(join(jsRoot, "test/types/usage.ts"), join(project, "src/usage.ts"));
  writeFileSync(
    join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { target: "es2022", module: "nodenext", moduleResolution: "nodenext", lib: ["es2022", "dom"], types: [], strict: true, noEmit: true },
      include: ["src/*.ts"],
    }),
  );
  execFileSync(process.execPath, [join(jsRoot, "node_modules/typescript/bin/tsc"), "-p", project], { ...quiet, cwd: project });
});

test("tsc --noEmit: the package's .d.ts and the typed usage file", { timeout: 120_000 }, () => {
  execFileSync(process.execPath, [join(jsRoot, "node_modules/typescript/bin/tsc"), "-p", join(jsRoot, "tsconfig.json")], { ...quiet, cwd: jsRoot });
});
