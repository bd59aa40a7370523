// The package in real edge runtimes, as a user gets it (`npm pack`, the
// tarball installed into a fresh project): Deno, and workerd, the open-source
// runtime of Cloudflare Workers. Both come from npm as devDependencies
// (`deno`, `workerd`), so `npm ci` installs them. edge.test.js runs the same
// handler inside Node under each runtime's resolution condition; this runs
// it where those conditions are meant for.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { build } from "esbuild";
import { jsRoot, packAndInstall, quiet } from "./helpers.js";

/** A runtime's binary from node_modules/.bin; fails with the fix if absent. */
function binary(name) {
  const path = join(jsRoot, "node_modules", ".bin", process.platform === "win32" ? `${name}.cmd` : name);
  assert.ok(existsSync(path), `${name} is not installed: run \`npm ci\` in js/ (it is a devDependency)`);
  return path;
}

const { project } = packAndInstall();
copyFileSync(join(jsRoot, "examples/edge-worker.js"), join(project, "worker.js"));
copyFileSync(join(jsRoot, "examples/policy.js"), join(project, "policy.js"));

test("Deno: the installed package type-checks and decides (the `deno` condition)", { timeout: 120_000 }, () => {
  const deno = binary("deno");
  writeFileSync(
    join(project, "main.ts"),
    `import { Lexecon, memoryStorage, type Decision } from "lexecon";
import worker from "./worker.js";
const policy = { name: "p", mode: "strict" as const, relations: [{ type: "permits" as const, subject: "model", action: "action:web_search", object: "*" }] };
const gov = await Lexecon.create({ nodeId: "deno-1", policy, storage: memoryStorage() });
const d: Decision = await gov.decide({ actor: "model", proposed_action: "Execute web_search", tool: "web_search", user_intent: "Research", risk_level: 1 });
const token = await gov.verifyToken(d.capability_token!.token, { tool: "web_search" });
const call = (tool: string) => worker.fetch(new Request("https://edge.example/tools/call", { method: "POST", body: JSON.stringify({ tool, args: { query: "q", command: "id" } }) }), {});
const allowed = await call("web_search");
const denied = await call("shell");
console.log(JSON.stringify({ resolved: import.meta.resolve("lexecon"), allowed: d.allowed, token: token.valid,
  ledger: (await gov.verifyLedger()).valid, handler: [allowed.status, denied.status], reason: (await denied.json()).reason }));
`,
  );
  copyFileSync(join(jsRoot, "test/types/usage.ts"), join(project, "usage.ts"));
  // Deno's own type checker, on the shipped .d.ts (through the exports map).
  execFileSync(deno, ["check", "main.ts", "usage.ts"], { ...quiet, cwd: project });
  // The engine fetches its .wasm from a file: URL next to the glue: reading
  // the package is the only permission it needs.
  const out = JSON.parse(execFileSync(deno, ["run", `--allow-read=${project}`, "main.ts"], { ...quiet, cwd: project }));
  assert.match(out.resolved, /node_modules\/lexecon\/src\/entry\/web\.js$/);
  assert.deepEqual(
    { ...out, resolved: undefined },
    { resolved: undefined, allowed: true, token: true, ledger: true, handler: [200, 403], reason: "forbidden by relation `relations[2]`" },
  );
});

/** A free loopback port (closed again before workerd binds it). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

test("workerd: a Worker bundled the way wrangler bundles it gates tool calls (the `workerd` condition)", { timeout: 120_000 }, async () => {
  const workerd = binary("workerd");
  // wrangler bundles with esbuild under the `workerd` condition and uploads
  // each .wasm import as a module of its own; this does the same.
  mkdirSync(join(project, "out"));
  const result = await build({
    absWorkingDir: project,
    entryPoints: ["worker.js"],
    outfile: join(project, "out", "worker.js"),
    bundle: true,
    format: "esm",
    platform: "neutral",
    conditions: ["workerd", "worker", "browser"],
    logLevel: "silent",
    metafile: true,
    plugins: [
      {
        name: "wasm-modules",
        setup(b) {
          b.onResolve({ filter: /\.wasm$/ }, (args) => {
            copyFileSync(join(args.resolveDir, args.path), join(project, "out", "lexecon.wasm"));
            return { path: "./lexecon.wasm", external: true };
          });
        },
      },
    ],
  });
  // The entry instantiates the engine as a side effect: a bundler must keep
  // it (package.json's `sideEffects` says so), or nothing is initialised.
  const [output] = Object.values(result.metafile.outputs);
  const entry = output.inputs["node_modules/lexecon/src/entry/workerd.js"];
  assert.ok(entry && entry.bytesInOutput > 0, `the workerd entry is not in the bundle: ${Object.keys(output.inputs).join(" ")}`);
  const port = await freePort();
  writeFileSync(
    join(project, "out", "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "lexecon.wasm", wasm = embed "lexecon.wasm"),
  ],
  compatibilityDate = "2025-09-01",
);
`,
  );
  const child = spawn(workerd, ["serve", "config.capnp"], { cwd: join(project, "out"), stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk) => (stderr += chunk));
  try {
    const url = `http://127.0.0.1:${port}/tools/call`;
    const call = (tool) => fetch(url, { method: "POST", body: JSON.stringify({ tool, args: { query: "workerd", command: "id" } }) });
    let allowed;
    for (let waited = 0; ; waited += 100) {
      try {
        allowed = await call("web_search");
        break;
      } catch (e) {
        if (waited > 20_000 || child.exitCode !== null) throw new Error(`workerd did not answer: ${stderr}`, { cause: e });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const body = await allowed.text();
    assert.equal(allowed.status, 200, `${body} ${stderr}`);
    const ok = JSON.parse(body);
    assert.equal(ok.decision.decision, "permit");
    assert.match(ok.decision.capability_token.token, /^lxc1\./);
    const denied = await call("shell");
    assert.equal(denied.status, 403);
    assert.equal((await denied.json()).reason, "forbidden by relation `relations[2]`");
    // The isolate keeps its node between requests: one chain, two entries.
    const again = await (await call("web_search")).json();
    assert.equal(again.decision.ledger_index, ok.decision.ledger_index + 2);
  } finally {
    child.kill();
  }
});
