// Edge runtimes: the edge-style handler (`export default { fetch(request,
// env) }`) gating tool calls, run in Node with Request/Response under each
// entry point's resolution condition; the edge entries import no Node
// built-ins; `lexecon/init` takes the module from the caller.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { jsRoot } from "./helpers.js";

function run(args) {
  return JSON.parse(execFileSync(process.execPath, args, { cwd: jsRoot, encoding: "utf8" }).trim().split("\n").pop());
}

const hooks = ["--import", "./test/support/register-wasm-hooks.js"];

for (const [condition, entry, extra] of [
  ["workerd", "src/entry/workerd.js", hooks],
  ["edge-light", "src/entry/edge-light.js", hooks],
  ["deno", "src/entry/web.js", ["--import", "./test/support/file-fetch.js"]],
  ["node", "lib/entry/node.js", []],
]) {
  test(`edge handler gates a tool call (condition ${condition})`, () => {
    const out = run([`--conditions=${condition}`, ...extra, "test/support/edge-run.js"]);
    assert.ok(out.resolved.endsWith(entry), `resolved ${out.resolved}`);
    assert.equal(out.allowed, "permit");
    assert.match(out.denied, /forbidden/);
    assert.equal(out.durableEntries, 2);
  });
}

test("lexecon/init: the module is passed in", () => {
  assert.deepEqual(run(["test/support/init-run.js"]), { allowed: true });
});

for (const how of ["init", "initSync"]) {
  test(`lexecon/init: ${how} accepts a module compiled in another realm (an edge sandbox's)`, () => {
    assert.deepEqual(run(["test/support/init-foreign-run.js", how]), { allowed: true });
  });
}

test("edge entry points import no Node built-ins and touch no fs or process", () => {
  const seen = new Set();
  const visit = (file) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = readFileSync(file, "utf8");
    const code = text.replace(/^\s*\/\/.*$/gm, "").replace(/\/\*[\s\S]*?\*\//g, "");
    assert.doesNotMatch(code, /from\s+["']node:|from\s+["'](fs|path|crypto|os|process)["']|require\(/, `${file} imports Node`);
    assert.doesNotMatch(code, /\bprocess\.|\bBuffer\b/, `${file} uses process/Buffer`);
    for (const m of code.matchAll(/(?:import|export)[^"']*from\s+["'](\.[^"']+)["']/g)) {
      if (m[1].endsWith(".wasm") || m[1].endsWith(".wasm?module")) continue;
      visit(resolve(dirname(file), m[1]));
    }
  };
  for (const entry of ["workerd.js", "edge-light.js", "web.js", "init.js"]) visit(resolve(jsRoot, "src/entry", entry));
  assert.ok([...seen].some((f) => f.endsWith("dist/wasm/lexecon_js.js")), "the wasm glue was checked too");
  assert.ok(![...seen].some((f) => f.endsWith("file-storage.js")), "fileStorage stays out of edge bundles");
});
