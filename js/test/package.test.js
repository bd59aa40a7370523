// The package as a user gets it: `npm pack`, install the tarball into a
// fresh project (offline: it has no dependencies), import `lexecon` from
// there, and type-check a typed usage file against the installed .d.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { build } from "esbuild";
import { jsRoot, packAndInstall, quiet } from "./helpers.js";

/** Runs `node file` in `cwd`; its exit code and output. */
function run(file, cwd) {
  try {
    return { status: 0, stdout: execFileSync(process.execPath, [file], { ...quiet, cwd, encoding: "utf8" }), stderr: "" };
  } catch (e) {
    const err = /** @type {any} */ (e);
    return { status: err.status, stdout: String(err.stdout), stderr: String(err.stderr) };
  }
}

// A bundled app that keeps its ledger in a file (the file ledger's code is
// loaded on first use, so the bundle inlines that dynamic import too).
const app = `import { Lexecon, fileStorage } from "lexecon";
const policy = { name: "p", mode: "strict", relations: [{ type: "permits", subject: "model", action: "action:web_search", object: "*" }] };
const gov = await Lexecon.create({ nodeId: "app-1", policy, storage: fileStorage("ledger.db") });
const d = await gov.decide({ actor: "model", proposed_action: "Execute web_search", tool: "web_search", user_intent: "Research", risk_level: 1 });
console.log(JSON.stringify({ allowed: d.allowed, ledger: (await gov.verifyLedger()).entries }));
`;

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
  assert.deepEqual(out, { allowed: true, token: "lxc2.", ledger: true, file: 2, denied: true, client: "function" });

  // The shipped .d.ts, from the installed package, with a typed usage file.
  mkdirSync(join(project, "src"));
  copyFileSync(join(jsRoot, "test/types/usage.ts"), join(project, "src/usage.ts"));
  // TypeScript compiling to CommonJS: `import` becomes `require("lexecon")`.
  writeFileSync(
    join(project, "src/usage-cjs.cts"),
    `import { Lexecon, memoryStorage, verifyToken, type Decision } from "lexecon";
import { fileStorage } from "lexecon/file";
export async function decide(): Promise<Decision> {
  const gov = await Lexecon.create({ nodeId: "cjs", storage: memoryStorage() });
  void fileStorage; void verifyToken;
  return gov.decide({ actor: "a", proposed_action: "x", tool: "t", user_intent: "y", risk_level: 1 });
}
`,
  );
  writeFileSync(
    join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: { target: "es2022", module: "nodenext", moduleResolution: "nodenext", lib: ["es2022", "dom"], types: [], strict: true, noEmit: true },
      include: ["src/*.ts", "src/*.cts"],
    }),
  );
  execFileSync(process.execPath, [join(jsRoot, "node_modules/typescript/bin/tsc"), "-p", project], { ...quiet, cwd: project });
});

test("tsc --noEmit: the package's .d.ts and the typed usage file", { timeout: 120_000 }, () => {
  execFileSync(process.execPath, [join(jsRoot, "node_modules/typescript/bin/tsc"), "-p", join(jsRoot, "tsconfig.json")], { ...quiet, cwd: jsRoot });
});

test(
  "require(\"lexecon\") from CommonJS: the same engine and classes as import",
  // Node >= 20.19 and 22.12 can require an ES module without top-level await.
  { timeout: 120_000, skip: process.features.require_module ? false : `Node ${process.version} cannot require ES modules` },
  () => {
    const { dir, project } = packAndInstall();
    writeFileSync(
      join(project, "main.cjs"),
      `const lexecon = require("lexecon");
const { fileStorage } = require("lexecon/file");
const path = require("node:path");
const policy = { name: "p", mode: "strict", relations: [{ type: "permits", subject: "model", action: "action:web_search", object: "*" }] };
(async () => {
  const gov = await lexecon.Lexecon.create({ nodeId: "cjs-1", policy, storage: fileStorage(path.join(${JSON.stringify(dir)}, "cjs.db")) });
  const d = await gov.decide({ actor: "model", proposed_action: "Execute web_search", tool: "web_search", user_intent: "Research", risk_level: 1 });
  const esm = await import("lexecon");
  const offline = lexecon.verifyToken(d.capability_token.token, { publicKey: gov.publicKey, tool: "web_search" });
  console.log(JSON.stringify({ allowed: d.allowed, offline: offline.valid, ledger: (await gov.verifyLedger()).entries,
    sameClass: esm.Lexecon === lexecon.Lexecon, sameEngine: esm.isInitialized() && esm.LexeconError === lexecon.LexeconError }));
})();
`,
    );
    const out = JSON.parse(execFileSync(process.execPath, ["main.cjs"], { ...quiet, cwd: project, encoding: "utf8" }));
    assert.deepEqual(out, { allowed: true, offline: true, ledger: 2, sameClass: true, sameEngine: true });
  },
);

test("an app bundled into one file (esbuild, as for AWS Lambda) finds the .wasm or says how to ship it", { timeout: 120_000 }, async () => {
  const { dir, project } = packAndInstall();
  writeFileSync(join(project, "app.js"), app);
  const out = join(dir, "deploy");
  mkdirSync(out);
  await build({ absWorkingDir: project, entryPoints: ["app.js"], bundle: true, platform: "node", format: "esm", outfile: join(out, "index.mjs"), logLevel: "silent" });

  // Deployed alone: no .wasm beside it, no node_modules under the working directory.
  const alone = run("index.mjs", out);
  assert.equal(alone.status, 1, alone.stdout);
  assert.match(alone.stderr, /LexeconError: cannot find Lexecon's WebAssembly module \(tried .*\)\. If your app is bundled, copy node_modules\/lexecon\/dist\/wasm\/lexecon_js_bg\.wasm next to the bundle/);
  assert.match(alone.stderr, /code: 'wasm_not_found'/);

  // Run from the project: found through its node_modules.
  assert.deepEqual(JSON.parse(run(join(out, "index.mjs"), project).stdout), { allowed: true, ledger: 2 });

  // Deployed with the .wasm copied beside the bundle, as the error says.
  copyFileSync(join(project, "node_modules/lexecon/dist/wasm/lexecon_js_bg.wasm"), join(out, "lexecon_js_bg.wasm"));
  assert.deepEqual(JSON.parse(run("index.mjs", out).stdout), { allowed: true, ledger: 2 });
});
