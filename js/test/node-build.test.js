// lib/, what Node loads (scripts/bundle-node.js): every `node` entry point
// shares one module graph, so there is one engine and one set of error
// classes whichever subpath a program imports; the file ledger is still
// loaded only when first used.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { createRequire } from "node:module";
import { join } from "node:path";
import * as main from "lexecon";
import * as client from "lexecon/client";
import * as file from "lexecon/file";
import * as init from "lexecon/init";
import { nodeFileTrace } from "@vercel/nft";
import { jsRoot } from "./helpers.js";

test("node entry points resolve to lib/", () => {
  const pkg = JSON.parse(readFileSync(`${jsRoot}package.json`, "utf8"));
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (typeof target === "object" && target.node) {
      assert.match(target.node, /^\.\/lib\//, `${subpath}: ${target.node}`);
      assert.match(import.meta.resolve(`lexecon${subpath.slice(1)}`), /\/js\/lib\//, subpath);
      // `require` (CommonJS) resolves to lib/ too; for "." to the entry
      // without top-level await.
      assert.match(createRequire(import.meta.url).resolve(`lexecon${subpath.slice(1)}`), /\/js\/lib\//, subpath);
    }
  }
  assert.match(createRequire(import.meta.url).resolve("lexecon"), /\/js\/lib\/entry\/node-require\.js$/);
});

test("require(\"lexecon\") exports what import does, from the same module instances", () => {
  // src/entry/node-require.js lists the names; Node 18 cannot require ES modules.
  const source = readFileSync(`${jsRoot}src/entry/node-require.js`, "utf8");
  const exported = [...source.matchAll(/^export \{([^}]*)\}/gm)].flatMap((m) => m[1].split(",").map((s) => s.trim()).filter(Boolean));
  assert.deepEqual(exported.sort(), Object.keys(main).sort());
  if (process.features.require_module) {
    const cjs = createRequire(import.meta.url)("lexecon");
    // fileStorage is a small wrapper each entry inlines; both load lib/file-storage.js.
    for (const name of Object.keys(main)) if (name !== "fileStorage") assert.equal(cjs[name], main[name], name);
  }
});

test("node entry points share classes and the engine", async () => {
  assert.equal(client.LexeconClient, main.LexeconClient);
  assert.equal(init.Lexecon, main.Lexecon);
  assert.equal(init.LexeconError, main.LexeconError);
  assert.equal(init.isInitialized(), true, "lexecon/init sees the engine lexecon instantiated");

  // An error raised inside the lazily loaded file ledger is the class the
  // main entry exports.
  const path = join(mkdtempSync(join(tmpdir(), "lexecon-js-")), "not-a-ledger");
  const storage = file.fileStorage(path, { readOnly: true });
  await assert.rejects(storage.open(), (e) => e instanceof main.LexeconStorageError && /does not exist/.test(e.message));
});

test("importing lexecon loads neither the file ledger nor node:module where Node has getBuiltinModule", () => {
  const script = `
    await import("lexecon");
    const loaded = (m) => process.moduleLoadList.includes("NativeModule " + m);
    console.log(JSON.stringify({ fsPromises: loaded("fs/promises"), module: loaded("module") }));`;
  const out = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { cwd: jsRoot, encoding: "utf8" }));
  assert.equal(out.fsPromises, false);
  // Node >= 20.16 hands out node:fs through process.getBuiltinModule; only
  // older Node pays for node:module's createRequire (src/entry/node.js).
  if (typeof process.getBuiltinModule === "function") assert.equal(out.module, false);
});

test("file tracers ship the .wasm with the node entries (@vercel/nft, as Vercel's Node.js functions and Next.js trace)", async () => {
  // They follow the literal `new URL("…", import.meta.url)` the entries pass
  // to src/wasm-file.js; built from a variable, the .wasm was left out.
  for (const entry of ["lib/entry/node.js", "lib/entry/node-require.js"]) {
    const { fileList } = await nodeFileTrace([join(jsRoot, entry)], { base: jsRoot });
    assert.ok(fileList.has("dist/wasm/lexecon_js_bg.wasm"), `${entry}: ${[...fileList].join(" ")}`);
  }
});
