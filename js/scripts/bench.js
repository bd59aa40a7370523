// `npm run bench`: the figures in README.md ("Figures"), in one run.
//   - module load + instantiate (fresh processes, `await import("lexecon")`),
//     and in the same processes the first Lexecon.create and first decide
//   - decide p50/p99 with memoryStorage, through the public API
//   - the same through the raw wasm engine (no queue, no adapter)
//   - one Ed25519 signature inside wasm (the anchor for decide)
//   - decide and sign again, sampled in alternating blocks (robust to a VM
//     whose speed drifts between the sections)
//   - sizes: wasm raw/gz, glue, npm tarball
// Pass --json for machine-readable output.
import { execFileSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { cpus, loadavg } from "node:os";
import { Lexecon, memoryStorage } from "lexecon";
import { engine, initWasmSync } from "../src/wasm.js";

const root = fileURLToPath(new URL("../", import.meta.url));
const asJson = process.argv.includes("--json");
const policy = JSON.parse(readFileSync(new URL("../../tests/vectors/guide_test_governance.json", import.meta.url), "utf8")).steps[0]
  .load_policy;
const request = { actor: "model", proposed_action: "Execute web_search", tool: "web_search", user_intent: "Research", risk_level: 1 };
const deny = { actor: "model", proposed_action: "Execute system_command", tool: "execute", user_intent: "Run command", risk_level: 5 };

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const median = (xs) => percentile([...xs].sort((a, b) => a - b), 50);
const us = (ms) => Math.round(ms * 10_000) / 10; // ms → µs, 1 decimal

// 1. Load + instantiate, each in a fresh process: from an ES module program
// (scripts/load-probe.js), and as the first import of `node -e`, which also
// pays for starting Node's ES module loader (any package does).
const probe = fileURLToPath(new URL("./load-probe.js", import.meta.url));
const probeSource = readFileSync(probe, "utf8");
const loads = [];
const loadCpu = [];
const creates = [];
const firstDecides = [];
const evalLoads = [];
for (let i = 0; i < 15; i++) {
  const out = JSON.parse(execFileSync(process.execPath, [probe], { cwd: root, encoding: "utf8" }));
  loads.push(out.load);
  loadCpu.push(out.cpu);
  creates.push(out.create);
  firstDecides.push(out.firstDecide);
  const cold = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", probeSource], { cwd: root, encoding: "utf8" }));
  evalLoads.push(cold.load);
}
const wasmPath = new URL("../dist/wasm/lexecon_js_bg.wasm", import.meta.url);

// 2. decide through the public API, memory storage.
async function timeDecide(gov, req, n) {
  const samples = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await gov.decide(req);
    samples[i] = performance.now() - t0;
  }
  return [...samples].sort((a, b) => a - b);
}
const gov = await Lexecon.create({ nodeId: "bench", policy, storage: memoryStorage() });
await timeDecide(gov, request, 3000); // warm up (JIT, rate-limit window)
// The guide policy rate-limits web_search (10/min): after warm-up these are
// rate-limit denials, still signed and recorded. Use a permissive copy for
// the allow path.
const permissive = await Lexecon.create({
  nodeId: "bench",
  policy: { ...policy, constraints: policy.constraints.filter((c) => c.action !== "rate_limit") },
  storage: memoryStorage(),
});
await timeDecide(permissive, request, 3000);
const allowSamples = await timeDecide(permissive, request, 20_000);
await timeDecide(permissive, deny, 2000);
const denySamples = await timeDecide(permissive, deny, 20_000);

// 3. The raw engine: prepare + copy out the record + commit, no storage.
// `lexecon` is lib/ (scripts/bundle-node.js); this is src/'s own instance
// of the same wasm.
initWasmSync(new WebAssembly.Module(readFileSync(wasmPath)));
const { WasmEngine, benchSign } = engine();
const raw = new WasmEngine(JSON.stringify({ node_id: "raw", default_token_ttl: 300, max_token_ttl: 3600 }), undefined, undefined);
raw.preparePolicy(JSON.stringify({ ...policy, constraints: [] }));
raw.commit();
const reqJson = JSON.stringify([request]);
const rawSamples = new Float64Array(20_000);
for (let i = 0; i < 3000; i++) {
  JSON.parse(raw.prepareDecisions(reqJson));
  raw.recordBytes(0);
  raw.commit();
}
for (let i = 0; i < rawSamples.length; i++) {
  const t0 = performance.now();
  JSON.parse(raw.prepareDecisions(reqJson));
  raw.recordBytes(0);
  raw.commit();
  rawSamples[i] = performance.now() - t0;
}
const rawSorted = [...rawSamples].sort((a, b) => a - b);

// The JSON boundary on the JS side: stringify the request, parse the answer.
const answer = raw.prepareDecisions(reqJson);
raw.abort();
const jsonRuns = [];
for (let r = 0; r < 5; r++) {
  const t0 = performance.now();
  for (let i = 0; i < 5000; i++) JSON.parse(JSON.stringify([request]).length ? answer : "");
  jsonRuns.push((performance.now() - t0) / 5000);
}

// 4. One Ed25519 signature inside wasm.
// Sampled one call at a time, like decide, so both p50s see the same machine.
for (let i = 0; i < 3000; i++) benchSign(1);
const signSamples = new Float64Array(20_000);
for (let i = 0; i < signSamples.length; i++) {
  const t0 = performance.now();
  benchSign(1);
  signSamples[i] = performance.now() - t0;
}
const signSorted = [...signSamples].sort((a, b) => a - b);
const signMs = percentile(signSorted, 50);

// 4b. The same p50s sampled interleaved: blocks of decides (public API,
// memory storage) alternate with blocks of signatures, so both see the same
// machine even when a VM's speed drifts between the sections above.
const BLOCK = 200;
const ROUNDS = 60;
const mixedDecide = new Float64Array(BLOCK * ROUNDS);
const mixedSign = new Float64Array(BLOCK * ROUNDS);
const blockRatios = [];
for (let round = -5; round < ROUNDS; round++) {
  const d = new Float64Array(BLOCK);
  const s = new Float64Array(BLOCK);
  for (let i = 0; i < BLOCK; i++) {
    const t0 = performance.now();
    await permissive.decide(request);
    d[i] = performance.now() - t0;
  }
  for (let i = 0; i < BLOCK; i++) {
    const t0 = performance.now();
    benchSign(1);
    s[i] = performance.now() - t0;
  }
  if (round < 0) continue; // warm-up
  mixedDecide.set(d, round * BLOCK);
  mixedSign.set(s, round * BLOCK);
  blockRatios.push(median(d) / median(s));
}
const mixedDecideSorted = [...mixedDecide].sort((a, b) => a - b);
const mixedSignSorted = [...mixedSign].sort((a, b) => a - b);

// 5. Sizes.
const wasmBytes = statSync(wasmPath).size;
const wasmGz = gzipSync(readFileSync(wasmPath), { level: 9 }).length;
const glueBytes = statSync(new URL("../dist/wasm/lexecon_js.js", import.meta.url)).size;
const packed = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json"], { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }))[0];

const figures = {
  node: process.version,
  cpus: cpus().length,
  load_average: loadavg()[0],
  load_ms: { median: median(loads), min: Math.min(...loads), max: Math.max(...loads), cpu_median: median(loadCpu) },
  load_first_esm_import_ms: { median: median(evalLoads) },
  create_ms: { median: median(creates) },
  first_decide_ms: { median: median(firstDecides) },
  decide_allow_us: { p50: us(percentile(allowSamples, 50)), p99: us(percentile(allowSamples, 99)) },
  decide_deny_us: { p50: us(percentile(denySamples, 50)), p99: us(percentile(denySamples, 99)) },
  raw_engine_decide_us: { p50: us(percentile(rawSorted, 50)), p99: us(percentile(rawSorted, 99)) },
  js_json_us: us(median(jsonRuns)),
  ed25519_sign_us: { p50: us(signMs), p99: us(percentile(signSorted, 99)) },
  decide_over_sign: Math.round((percentile(allowSamples, 50) / signMs) * 100) / 100,
  interleaved: {
    decide_us: { p50: us(percentile(mixedDecideSorted, 50)), p99: us(percentile(mixedDecideSorted, 99)) },
    sign_us: { p50: us(percentile(mixedSignSorted, 50)), p99: us(percentile(mixedSignSorted, 99)) },
    decide_over_sign: Math.round((percentile(mixedDecideSorted, 50) / percentile(mixedSignSorted, 50)) * 100) / 100,
    block_ratio_range: [Math.min(...blockRatios), Math.max(...blockRatios)].map((r) => Math.round(r * 100) / 100),
  },
  wasm_bytes: wasmBytes,
  wasm_gz_bytes: wasmGz,
  glue_js_bytes: glueBytes,
  tarball_bytes: packed.size,
  unpacked_bytes: packed.unpackedSize,
  tarball_files: packed.entryCount,
};

if (asJson) {
  console.log(JSON.stringify(figures, null, 2));
} else {
  const f = figures;
  const kb = (n) => `${(n / 1024).toFixed(0)} KB`;
  console.log(`Node ${f.node}, ${f.cpus} CPUs, load average ${f.load_average.toFixed(2)}`);
  console.log(`module load + instantiate   ${f.load_ms.median.toFixed(1)} ms median wall (min ${f.load_ms.min.toFixed(1)}, max ${f.load_ms.max.toFixed(1)}), ${f.load_ms.cpu_median.toFixed(1)} ms CPU`);
  console.log(`  … as node -e's first import ${f.load_first_esm_import_ms.median.toFixed(1)} ms median wall (includes starting Node's ES module loader)`);
  console.log(`Lexecon.create (no policy)  ${f.create_ms.median.toFixed(2)} ms median (the process's first)`);
  console.log(`first decide in a process   ${f.first_decide_ms.median.toFixed(2)} ms median (V8 compiles the wasm it calls)`);
  console.log(`decide, allow (memory)      p50 ${f.decide_allow_us.p50} µs, p99 ${f.decide_allow_us.p99} µs`);
  console.log(`decide, deny (memory)       p50 ${f.decide_deny_us.p50} µs, p99 ${f.decide_deny_us.p99} µs`);
  console.log(`raw engine prepare+commit   p50 ${f.raw_engine_decide_us.p50} µs, p99 ${f.raw_engine_decide_us.p99} µs`);
  console.log(`JSON in JS per decide       ${f.js_json_us} µs (stringify request + parse answer)`);
  console.log(`Ed25519 sign in wasm        p50 ${f.ed25519_sign_us.p50} µs, p99 ${f.ed25519_sign_us.p99} µs   (decide p50 / sign p50 = ${f.decide_over_sign}x)`);
  const m = f.interleaved;
  console.log(`… interleaved (${ROUNDS} × ${BLOCK} each) decide p50 ${m.decide_us.p50} µs, p99 ${m.decide_us.p99} µs; sign p50 ${m.sign_us.p50} µs, p99 ${m.sign_us.p99} µs   (decide p50 / sign p50 = ${m.decide_over_sign}x; blocks ${m.block_ratio_range.join("–")}x)`);
  console.log(`wasm                        ${kb(f.wasm_bytes)} (${kb(f.wasm_gz_bytes)} gzipped); glue ${kb(f.glue_js_bytes)}`);
  console.log(`npm tarball                 ${kb(f.tarball_bytes)} (${kb(f.unpacked_bytes)} unpacked, ${f.tarball_files} files)`);
}
