// The package in real edge runtimes, as a user gets it (`npm pack`, the
// tarball installed into a fresh project): Deno; workerd, the open-source
// runtime of Cloudflare Workers; edge-runtime, the sandbox Vercel ships for
// running edge functions (`vercel dev`, Next.js); a Next.js edge route and a
// Node.js-runtime route, built and served by Next itself; and Bun, which
// takes the `node` entry. They come
// from npm as devDependencies (`deno`, `workerd`, `edge-runtime`, `next`,
// `bun`), so `npm ci` installs them. edge.test.js runs the same
// handler inside Node under each runtime's resolution condition; this runs
// it where those conditions are meant for.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
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

/**
 * Starts a server process; resolves once `probe` (a URL) answers at all, or
 * with a 2xx when `ok` is set. Its output is kept for failure messages.
 */
async function startServer(command, args, { cwd, env, probe, ok = false }) {
  const child = spawn(command, args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const stop = async () => {
    if (child.exitCode === null) child.kill();
    await exited;
  };
  for (let waited = 0; ; waited += 100) {
    try {
      const res = await fetch(probe);
      if (!ok || res.ok) return { stop, output: () => output };
    } catch (e) {
      if (waited > 30_000 || child.exitCode !== null) {
        await stop();
        throw new Error(`${args[0] ?? command} did not answer: ${output}`, { cause: e });
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts `workerd serve` in `dir`; resolves once `probe` answers 2xx. */
const startWorkerd = (dir, probe) => startServer(binary("workerd"), ["serve", "config.capnp", "--experimental"], { cwd: dir, probe, ok: true });

/** POSTs a tool call to the edge example's handler at `base`. */
async function callTool(base, tool) {
  const res = await fetch(new URL("/tools/call", base), { method: "POST", body: JSON.stringify({ tool, args: { query: "q", command: "id" } }) });
  const text = await res.text();
  return { status: res.status, body: text.startsWith("{") ? JSON.parse(text) : { text } };
}

/** Next.js's CLI, from js/node_modules. */
const nextCli = join(jsRoot, "node_modules/next/dist/bin/next");

/** The edge example's handler as an App Router route with `runtime = "edge"`, at app/tools/call. */
const edgeRoute = `import worker from "../../../worker.js";
export const runtime = "edge";
export function POST(request) {
  return worker.fetch(request, {});
}
`;

/** A Node.js-runtime route at app/decide: decides \`{ tool }\`, ledger in the file $LEXECON_LEDGER. */
const nodeRoute = `import { Lexecon, fileStorage } from "lexecon";
import { policy } from "../../policy.js";
export const runtime = "nodejs";
let node;
export async function POST(request) {
  node ??= Lexecon.create({ nodeId: "next-node", policy, storage: fileStorage(process.env.LEXECON_LEDGER) });
  const gov = await node;
  const { tool } = await request.json();
  const d = await gov.decide({ actor: "model", proposed_action: \`Execute \${tool}\`, tool, user_intent: "test", risk_level: 1 });
  return Response.json(d, { status: d.allowed ? 200 : 403 });
}
`;

/**
 * Writes a Next.js App Router app into `app`: package.json, a layout, the
 * examples' policy and edge handler, and `routes` (`{ "tools/call":
 * edgeRoute }`, paths under app/). The packed package is linked in, or
 * copied with `copyPackage` (standalone output's file tracing copies what
 * links point to as links); `next`, `react` and `react-dom` are linked from
 * js/node_modules unless `linkNext` is false (the app then finds them by
 * living under js/).
 */
function writeNextApp(app, routes, { copyPackage = false, linkNext = true } = {}) {
  mkdirSync(join(app, "node_modules"), { recursive: true });
  if (linkNext) {
    for (const pkg of ["next", "react", "react-dom"]) {
      symlinkSync(join(jsRoot, "node_modules", pkg), join(app, "node_modules", pkg), "dir");
    }
  }
  const lexecon = join(project, "node_modules/lexecon");
  if (copyPackage) cpSync(lexecon, join(app, "node_modules/lexecon"), { recursive: true });
  else symlinkSync(lexecon, join(app, "node_modules/lexecon"), "dir");
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "next-app", private: true, type: "module" }));
  copyFileSync(join(jsRoot, "examples/edge-worker.js"), join(app, "worker.js"));
  copyFileSync(join(jsRoot, "examples/policy.js"), join(app, "policy.js"));
  for (const [route, source] of Object.entries(routes)) {
    mkdirSync(join(app, "app", route), { recursive: true });
    writeFileSync(join(app, "app", route, "route.js"), source);
  }
  writeFileSync(join(app, "app/layout.js"), `export default function Layout({ children }) { return children; }\n`);
}

/** POSTs \`{ tool }\` to the Node.js route at `base`. */
async function decideVia(base, tool) {
  const res = await fetch(new URL("/decide", base), { method: "POST", body: JSON.stringify({ tool }) });
  const text = await res.text();
  return { status: res.status, body: text.startsWith("{") ? JSON.parse(text) : { text } };
}

/**
 * The edge example's handler at `base` permits web_search with a token and
 * forbids shell (the policy's relations[2]); `output` names the server's
 * output for failure messages. Returns the permitted call's decision.
 */
async function assertEdgeHandler(base, output = () => "") {
  const allowed = await callTool(base, "web_search");
  assert.equal(allowed.status, 200, `${JSON.stringify(allowed.body)} ${output()}`);
  assert.equal(allowed.body.decision.decision, "permit");
  assert.match(allowed.body.decision.capability_token.token, /^lxc2\./);
  const denied = await callTool(base, "shell");
  assert.equal(denied.status, 403);
  assert.equal(denied.body.reason, "forbidden by relation `relations[2]`");
  return allowed.body.decision;
}

test("workerd: a Worker bundled as wrangler bundles it keeps its ledger in a Durable Object (the `workerd` condition)", { timeout: 120_000 }, async () => {
  // The edge example's handler inside a Durable Object, whose transactional
  // storage is the node's async storage adapter (the example's
  // `durableObjectStorage`); every request goes through that one object.
  writeFileSync(
    join(project, "do.js"),
    `import worker, { durableObjectStorage } from "./worker.js";
import { Lexecon } from "lexecon";
export class Ledger {
  constructor(state) { this.storage = state.storage; }
  async fetch(request) {
    if (new URL(request.url).pathname === "/ledger/verify") {
      const reader = await Lexecon.create({ nodeId: "edge-1", storage: durableObjectStorage(this.storage) });
      return Response.json(await reader.verifyLedger());
    }
    return worker.fetch(request, { LEDGER: this.storage, LEXECON_SIGNING_KEY: "07".repeat(32) });
  }
}
export default { fetch: (request, env) => env.LEDGER.get(env.LEDGER.idFromName("ledger")).fetch(request) };
`,
  );
  // wrangler bundles with esbuild under the `workerd` condition and uploads
  // each .wasm import as a module of its own; this does the same.
  const out = join(project, "out");
  mkdirSync(join(out, "disk"), { recursive: true });
  const result = await build({
    absWorkingDir: project,
    entryPoints: ["do.js"],
    outfile: join(out, "worker.js"),
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
            copyFileSync(join(args.resolveDir, args.path), join(out, "lexecon.wasm"));
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
    join(out, "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .worker), (name = "disk", disk = (path = ${JSON.stringify(join(out, "disk"))}, writable = true))],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "lexecon.wasm", wasm = embed "lexecon.wasm"),
  ],
  compatibilityDate = "2025-09-01",
  durableObjectNamespaces = [(className = "Ledger", uniqueKey = "lexecon-ledger")],
  durableObjectStorage = (localDisk = "disk"),
  bindings = [(name = "LEDGER", durableObjectNamespace = "Ledger")],
);
`,
  );
  const base = `http://127.0.0.1:${port}`;
  const call = (tool) => callTool(base, tool);
  const verify = async () => (await fetch(`${base}/ledger/verify`)).json();

  let server = await startWorkerd(out, `${base}/ledger/verify`);
  try {
    await assertEdgeHandler(base, server.output);
    // The policy and two decisions, read back from the object's storage.
    assert.deepEqual({ ...(await verify()), headHash: undefined }, { valid: true, entries: 3, headHash: undefined });
  } finally {
    await server.stop();
  }

  // A new workerd process on the same disk: the chain goes on from there.
  server = await startWorkerd(out, `${base}/ledger/verify`);
  try {
    const after = await call("web_search");
    assert.equal(after.status, 200, JSON.stringify(after.body));
    assert.equal(after.body.decision.ledger_index, 3);
    assert.deepEqual({ ...(await verify()), headHash: undefined }, { valid: true, entries: 4, headHash: undefined });
  } finally {
    await server.stop();
  }
});

test("Vercel Edge: edge-runtime, Vercel's edge sandbox, serves a function bundled as Next.js bundles it (the `edge-light` condition)", { timeout: 120_000 }, async () => {
  const { EdgeRuntime, runServer } = await import("edge-runtime");
  writeFileSync(
    join(project, "vercel.js"),
    `import worker from "./worker.js";
addEventListener("fetch", (event) => event.respondWith(worker.fetch(event.request, {})));
`,
  );
  // Next.js bundles edge code under the `edge-light`, `worker` and `browser`
  // conditions; a `.wasm?module` import becomes a global binding
  // (next-middleware-wasm-loader: `module.exports = wasm_<sha1>`) that the
  // sandbox fills with the compiled WebAssembly.Module.
  let wasm;
  const result = await build({
    absWorkingDir: project,
    entryPoints: ["vercel.js"],
    write: false,
    bundle: true,
    format: "iife",
    platform: "neutral",
    mainFields: ["module", "main"],
    conditions: ["edge-light", "worker", "browser"],
    logLevel: "silent",
    metafile: true,
    plugins: [
      {
        name: "wasm-module-bindings",
        setup(b) {
          b.onResolve({ filter: /\.wasm\?module$/ }, (args) => ({
            path: join(args.resolveDir, args.path.replace(/\?module$/, "")),
            namespace: "wasm-binding",
          }));
          b.onLoad({ filter: /.*/, namespace: "wasm-binding" }, (args) => {
            const bytes = readFileSync(args.path);
            wasm = { name: `wasm_${createHash("sha1").update(bytes).digest("hex")}`, module: new WebAssembly.Module(bytes) };
            return { contents: `export default ${wasm.name};`, loader: "js" };
          });
        },
      },
    ],
  });
  const [output] = Object.values(result.metafile.outputs);
  assert.ok(output.inputs["node_modules/lexecon/src/entry/edge-light.js"], `the edge-light entry is not in the bundle: ${Object.keys(output.inputs).join(" ")}`);
  assert.ok(wasm, "the bundle imports no .wasm?module");

  const runtime = new EdgeRuntime({
    // Vercel's production edge refuses to compile code or wasm at run time;
    // edge-runtime allows wasm by default, so say it.
    codeGeneration: { strings: false, wasm: false },
    initialCode: result.outputFiles[0].text,
    extend: (context) => Object.assign(context, { [wasm.name]: wasm.module }),
  });
  // No Node globals, no compiling wasm from bytes.
  assert.deepEqual(
    JSON.parse(
      runtime.evaluate(`JSON.stringify({ process: typeof process, require: typeof require,
        compile: (() => { try { new WebAssembly.Module(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0])); return "allowed"; } catch { return "refused"; } })() })`),
    ),
    { process: "undefined", require: "undefined", compile: "refused" },
  );
  const server = await runServer({ runtime, host: "127.0.0.1", port: 0 });
  try {
    const permitted = await assertEdgeHandler(server.url);
    assert.equal(permitted.ledger_index, 1);
  } finally {
    await server.close();
  }
});

test("Next.js: a Node.js-runtime route (Next's default) keeps a file ledger, under `next start` and as standalone output (the `node` condition, webpack)", { timeout: 240_000 }, async () => {
  // Webpack bundles the package's Node build into the server chunks, so the
  // .wasm is not where the package keeps it. Before src/wasm-file.js, `next
  // build` failed here: "Module not found: Can't resolve 'lexecon_js_bg.wasm'".
  const app = join(project, "next-node-app");
  writeNextApp(app, { decide: nodeRoute }, { copyPackage: true });
  // js/README's recipe for output that ships only traced files (the root is
  // the app, not the test project around it).
  writeFileSync(
    join(app, "next.config.js"),
    `export default {
  output: "standalone",
  outputFileTracingRoot: import.meta.dirname,
  outputFileTracingIncludes: { "/**": ["./node_modules/lexecon/package.json", "./node_modules/lexecon/dist/wasm/lexecon_js_bg.wasm"] },
};
`,
  );
  const ledger = join(app, "ledger.db");
  const env = { ...process.env, NEXT_TELEMETRY_DISABLED: "1", LEXECON_LEDGER: ledger };
  execFileSync(process.execPath, [nextCli, "build"], { ...quiet, cwd: app, env });
  const standalone = join(app, ".next/standalone");
  assert.ok(existsSync(join(standalone, "node_modules/lexecon/dist/wasm/lexecon_js_bg.wasm")), "the .wasm is traced into the standalone output");

  const serve = async (command, args, cwd, port) => {
    const base = `http://127.0.0.1:${port}`;
    // Any answer means it is up (a GET on the route answers 405).
    const server = await startServer(command, args, { cwd, env: { ...env, PORT: String(port), HOSTNAME: "127.0.0.1" }, probe: `${base}/decide` });
    try {
      const allowed = await decideVia(base, "web_search");
      assert.equal(allowed.status, 200, `${JSON.stringify(allowed.body)} ${server.output()}`);
      assert.match(allowed.body.capability_token.token, /^lxc2\./);
      const denied = await decideVia(base, "shell");
      assert.equal(denied.status, 403);
      assert.equal(denied.body.reason, "forbidden by relation `relations[2]`");
    } finally {
      await server.stop();
    }
  };
  let port = await freePort();
  await serve(process.execPath, [nextCli, "start", "-p", String(port), "-H", "127.0.0.1"], app, port);
  // The standalone server where the package's own files are gone, as where
  // only the output is deployed: the engine comes from the traced copy.
  renameSync(join(app, "node_modules/lexecon"), join(app, "lexecon.moved"));
  try {
    port = await freePort();
    await serve(process.execPath, ["server.js"], standalone, port);
  } finally {
    renameSync(join(app, "lexecon.moved"), join(app, "node_modules/lexecon"));
  }
  // Both servers wrote one chain: the policy, then two decisions each.
  writeFileSync(
    join(project, "next-verify.js"),
    `import { Lexecon, fileStorage } from "lexecon";
const gov = await Lexecon.create({ nodeId: "next-node", storage: fileStorage(process.argv[2]) });
console.log(JSON.stringify(await gov.verifyLedger()));
`,
  );
  const report = JSON.parse(execFileSync(process.execPath, ["next-verify.js", ledger], { ...quiet, cwd: project }));
  assert.deepEqual({ valid: report.valid, entries: report.entries }, { valid: true, entries: 5 });
});

test("Next.js dev server with Turbopack (`next dev --turbopack`, create-next-app's default): an edge route and a Node.js route", { timeout: 240_000 }, async () => {
  // Turbopack is a bundler of its own. With the package before
  // src/wasm-file.js, the Node.js route answered 500: "Module not found:
  // Can't resolve 'lexecon_js_bg.wasm'". Turbopack wants `next` inside its
  // root, so the app lives under js/ (whose node_modules has it), with the
  // packed package copied in.
  const app = mkdtempSync(join(jsRoot, "test", ".tmp-next-dev-"));
  try {
    writeNextApp(app, { "tools/call": edgeRoute, decide: nodeRoute }, { copyPackage: true, linkNext: false });
    const env = { ...process.env, NEXT_TELEMETRY_DISABLED: "1", LEXECON_LEDGER: join(app, "ledger.db") };
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    // The dev server compiles a route on its first request; a GET on the
    // Node.js route compiles it (and answers 405).
    const server = await startServer(process.execPath, [nextCli, "dev", "--turbopack", "-p", String(port), "-H", "127.0.0.1"], { cwd: app, env, probe: `${base}/decide` });
    try {
      const decided = await decideVia(base, "web_search");
      assert.equal(decided.status, 200, `${JSON.stringify(decided.body)} ${server.output()}`);
      assert.match(decided.body.capability_token.token, /^lxc2\./);
      await assertEdgeHandler(base, server.output);
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});

test("Bun: the installed package decides and keeps a file ledger that Node verifies (the `node` condition)", { timeout: 120_000 }, () => {
  const bun = binary("bun");
  writeFileSync(
    join(project, "bun-main.js"),
    `import { Lexecon, fileStorage } from "lexecon";
import worker from "./worker.js";
const policy = { name: "p", mode: "strict", relations: [{ type: "permits", subject: "model", action: "action:web_search", object: "*" }] };
const gov = await Lexecon.create({ nodeId: "bun-1", policy, storage: fileStorage(process.argv[2]) });
const d = await gov.decide({ actor: "model", proposed_action: "Execute web_search", tool: "web_search", user_intent: "Research", risk_level: 1 });
const token = await gov.verifyToken(d.capability_token.token, { tool: "web_search" });
const denied = await worker.fetch(new Request("https://edge.example/tools/call", { method: "POST", body: JSON.stringify({ tool: "shell", args: {} }) }), {});
console.log(JSON.stringify({ runtime: typeof Bun, resolved: import.meta.resolve("lexecon"), allowed: d.allowed, token: token.valid,
  ledger: await gov.verifyLedger(), handler: denied.status }));
`,
  );
  writeFileSync(
    join(project, "node-verify.js"),
    `import { Lexecon, fileStorage } from "lexecon";
const gov = await Lexecon.create({ nodeId: "bun-1", storage: fileStorage(process.argv[2]) });
console.log(JSON.stringify(await gov.verifyLedger()));
`,
  );
  const ledger = join(project, "bun-ledger.db");
  const out = JSON.parse(execFileSync(bun, ["bun-main.js", ledger], { ...quiet, cwd: project }));
  assert.match(out.resolved, /node_modules\/lexecon\/lib\/entry\/node\.js$/);
  assert.deepEqual(
    { ...out, resolved: undefined },
    { runtime: "object", resolved: undefined, allowed: true, token: true, ledger: { valid: true, entries: 2, headHash: out.ledger.headHash }, handler: 403 },
  );
  // The same file, read by the package on Node: the same chain.
  const fromNode = JSON.parse(execFileSync(process.execPath, ["node-verify.js", ledger], { ...quiet, cwd: project }));
  assert.deepEqual(fromNode, out.ledger);
});

test("Next.js: an edge route handler built by `next build` and served by `next start` (the `edge-light` condition, webpack)", { timeout: 240_000 }, async () => {
  // Next.js is what most Vercel Edge code is built with: webpack under the
  // `edge-light` condition, the `.wasm?module` import shipped as a wasm
  // binding, and Next's edge sandbox around the route.
  const app = join(project, "next-app");
  writeNextApp(app, { "tools/call": edgeRoute });
  const env = { ...process.env, NEXT_TELEMETRY_DISABLED: "1" };
  execFileSync(process.execPath, [nextCli, "build"], { ...quiet, cwd: app, env });
  // The route is an edge function whose engine arrives as a wasm binding.
  const manifest = JSON.parse(readFileSync(join(app, ".next/server/middleware-manifest.json"), "utf8"));
  const route = manifest.functions["/tools/call/route"];
  assert.ok(route, `no edge function for the route: ${Object.keys(manifest.functions).join(" ")}`);
  assert.equal(route.wasm?.length, 1, JSON.stringify(route));

  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  // Any answer means it is up (the handler answers a GET with 404).
  const server = await startServer(process.execPath, [nextCli, "start", "-p", String(port), "-H", "127.0.0.1"], { cwd: app, env, probe: `${base}/tools/call` });
  try {
    await assertEdgeHandler(base, server.output);
  } finally {
    await server.stop();
  }
});
