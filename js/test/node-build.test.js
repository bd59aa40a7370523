// lib/, what Node loads (scripts/bundle-node.js): every `node` entry point
// shares one module graph, so there is one engine and one set of error
// classes whichever subpath a program imports; the file ledger is still
// loaded only when first used.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as main from "lexecon";
import * as client from "lexecon/client";
import * as file from "lexecon/file";
import * as init from "lexecon/init";
import { jsRoot } from "./helpers.js";

test("node entry points resolve to lib/", () => {
  const pkg = JSON.parse(readFileSync(`${jsRoot}package.json`, "utf8"));
  for (const [subpath, target] of Object.entries(pkg.exports)) {
    if (typeof target === "object" && target.node) {
      assert.match(target.node, /^\.\/lib\//, `${subpath}: ${target.node}`);
      assert.match(import.meta.resolve(`lexecon${subpath.slice(1)}`), /\/js\/lib\//, subpath);
    }
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
