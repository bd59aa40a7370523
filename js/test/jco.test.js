// The design's other JavaScript path: the WASI component (built by
// scripts/build-component.sh) transpiled with jco and run in Node. The
// vectors' clock, random stream, key and storage are supplied as the
// component's imports; the ledger must equal the native core's byte for byte.
// A second test drives the component's failure paths through the same imports.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createPrivateKey, createPublicKey, sign as edSign } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { repoRoot, vectorFiles } from "./helpers.js";

const componentPath = process.env.LEXECON_COMPONENT ?? join(repoRoot, "target/lexecon.wasm");
const skip = existsSync(componentPath) ? false : `no component at ${componentPath} (run scripts/build-component.sh)`;

/** lexecon_core::random::SeededRandom: block i = SHA-256(seed ‖ i as u64 LE). */
function seededRandom(seed) {
  let counter = 0n;
  let block = new Uint8Array(0);
  let used = 0;
  return (len) => {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      if (used === block.length) {
        const c = Buffer.alloc(8);
        c.writeBigUInt64LE(counter);
        block = createHash("sha256").update(Buffer.from(seed, "utf8")).update(c).digest();
        counter += 1n;
        used = 0;
      }
      out[i] = block[used++];
    }
    return out;
  };
}

function ed25519(seedHex) {
  const pkcs8 = Buffer.concat([Buffer.from("302e020100300506032b657004220420", "hex"), Buffer.from(seedHex, "hex")]);
  const key = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" });
  const publicKey = new Uint8Array(createPublicKey(key).export({ format: "der", type: "spki" }).subarray(-32));
  const keyId = `ed25519:${createHash("sha256").update(publicKey).digest("hex").slice(0, 16)}`;
  return { sign: (msg) => new Uint8Array(edSign(null, msg, key)), publicKey, keyId };
}

/** The component's imports for one vector run. */
async function imports(v, ledger) {
  const { cli, io, random } = await import("@bytecodealliance/preview2-shim");
  let next = BigInt(v.clock.start_ms);
  const step = BigInt(v.clock.step_ms);
  const bytes = seededRandom(v.random_seed);
  const key = ed25519(v.signing_seed);
  /** Entry hashes, by index, for `find`. */
  const hashes = [];
  const byVersionedName = {
    "lexecon:governance/signer@0.1.0": { sign: key.sign, publicKey: () => key.publicKey, keyId: () => key.keyId },
    "lexecon:governance/storage@0.1.0": {
      len: () => BigInt(ledger.length),
      get: (i) => ledger[Number(i)],
      getRange: (s, e) => ledger.slice(Number(s), Number(e)),
      find(entryHash) {
        const i = hashes.indexOf(entryHash);
        return i < 0 ? undefined : BigInt(i);
      },
      append(entries) {
        if (entries.length > 0 && Number(entries[0].index) !== ledger.length) {
          throw { tag: "conflict", val: BigInt(ledger.length) };
        }
        for (const e of entries) {
          ledger.push(new Uint8Array(e.bytes));
          hashes.push(e.entryHash);
        }
      },
    },
    "wasi:cli/environment@0.2.6": cli.environment,
    "wasi:cli/exit@0.2.6": cli.exit,
    "wasi:cli/stderr@0.2.6": cli.stderr,
    "wasi:cli/stdin@0.2.6": cli.stdin,
    "wasi:cli/stdout@0.2.6": cli.stdout,
    "wasi:cli/terminal-input@0.2.6": cli.terminalInput,
    "wasi:cli/terminal-output@0.2.6": cli.terminalOutput,
    "wasi:cli/terminal-stderr@0.2.6": cli.terminalStderr,
    "wasi:cli/terminal-stdin@0.2.6": cli.terminalStdin,
    "wasi:cli/terminal-stdout@0.2.6": cli.terminalStdout,
    "wasi:io/error@0.2.6": io.error,
    "wasi:io/poll@0.2.6": io.poll,
    "wasi:io/streams@0.2.6": io.streams,
    "wasi:random/insecure-seed@0.2.6": random.insecureSeed,
    // The vector's stepping clock and seeded stream instead of the real ones.
    "wasi:clocks/wall-clock@0.2.12": {
      now() {
        const ms = next;
        next += step;
        return { seconds: ms / 1000n, nanoseconds: Number(ms % 1000n) * 1_000_000 };
      },
      resolution: () => ({ seconds: 0n, nanoseconds: 1_000_000 }),
    },
    "wasi:random/random@0.2.12": {
      getRandomBytes: (len) => bytes(Number(len)),
      getRandomU64: () => new DataView(bytes(8).buffer).getBigUint64(0, true),
    },
  };
  // jco's generated code looks imports up without the `@version`.
  const out = {};
  for (const [name, value] of Object.entries(byVersionedName)) {
    out[name] = value;
    out[name.replace(/@[0-9.]+$/, "")] = value;
  }
  return out;
}

/** A vector request (snake_case JSON) as the WIT record. */
function witRequest(r) {
  return {
    requestId: r.request_id,
    actor: r.actor,
    proposedAction: r.proposed_action,
    tool: r.tool,
    userIntent: r.user_intent,
    riskLevel: r.risk_level,
    dataClasses: r.data_classes ?? [],
    context: r.context === undefined ? undefined : JSON.stringify(r.context),
    policyMode: r.policy_mode,
    tokenTtl: r.token_ttl === undefined ? undefined : BigInt(r.token_ttl),
  };
}

/** The component transpiled by jco (once per process) and its loader. */
let transpiled;
async function transpileComponent() {
  transpiled ??= (async () => {
    const { transpile } = await import("@bytecodealliance/jco");
    const t0 = performance.now();
    const { files } = await transpile(readFileSync(componentPath), { name: "lexecon", instantiation: "sync", noTypescript: true });
    const transpileMs = performance.now() - t0;
    const dir = mkdtempSync(join(tmpdir(), "lexecon-jco-"));
    for (const [name, data] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), data);
    }
    const { instantiate } = await import(pathToFileURL(join(dir, "lexecon.js")).href);
    const getCoreModule = (path) => new WebAssembly.Module(readFileSync(join(dir, path)));
    return { instantiate, getCoreModule, transpileMs };
  })();
  return transpiled;
}

/** What a component call that returns `err` throws (jco: a ComponentError whose `payload` is the error). */
function payloadOf(call) {
  try {
    call();
  } catch (e) {
    assert.ok(e && "payload" in e, `not a component error: ${e}`);
    return e.payload;
  }
  assert.fail("the call did not fail");
}

test("jco: the transpiled WASI component reproduces the vectors in Node", { skip, timeout: 120_000 }, async (t) => {
  const { instantiate, getCoreModule, transpileMs } = await transpileComponent();

  const vectors = vectorFiles();
  assert.ok(vectors.length > 0);
  for (const { name, path } of vectors) {
    const v = JSON.parse(readFileSync(path, "utf8"));
    const ledger = [];
    const root = instantiate(getCoreModule, await imports(v, ledger));
    const gov = root.engine.Governor.open({
      nodeId: v.node.node_id,
      defaultTokenTtl: BigInt(v.node.default_token_ttl),
      maxTokenTtl: BigInt(v.node.max_token_ttl),
    });
    v.steps.forEach((step, i) => {
      const expected = v.expected.steps[i];
      if (step.load_policy !== undefined) {
        const loaded = gov.loadPolicy(JSON.stringify(step.load_policy, null, 2));
        assert.equal(loaded.ledgerEntryHash, expected.policy.ledger_entry_hash, `${name} step ${i}`);
        assert.equal(loaded.recorded, expected.policy.recorded);
      }
      const batch = step.decide !== undefined ? [step.decide] : step.decide_batch;
      if (batch !== undefined) {
        const results = gov.decideBatch(batch.map(witRequest));
        results.forEach((r, j) => {
          const want = expected[j];
          if (want.error) {
            assert.equal(r.tag, "err", `${name} step ${i}.${j}`);
            assert.equal(r.val.field, want.error.field);
          } else {
            assert.equal(r.tag, "ok", `${name} step ${i}.${j}: ${JSON.stringify(r.val, (_, x) => (typeof x === "bigint" ? String(x) : x))}`);
            assert.equal(r.val.decision, want.decision);
            assert.equal(r.val.reason, want.reason);
            assert.equal(r.val.decisionHash, want.decision_hash);
            assert.equal(r.val.ledgerEntryHash, want.ledger_entry_hash);
            assert.equal(r.val.capabilityToken?.token, want.capability_token?.token);
          }
        });
      }
    });
    const decoder = new TextDecoder();
    assert.deepEqual(
      ledger.map((b) => decoder.decode(b)),
      v.expected.ledger,
      `${name}: ledger bytes`,
    );
    assert.equal(gov.head().headHash, v.expected.head_hash);
    assert.equal(gov.verifyLedger().valid, true);
  }
  t.diagnostic(`jco transpile: ${transpileMs.toFixed(0)} ms; ${vectors.length} vectors reproduced through the component`);
});

test("jco: storage and signer failures, tokens, lookups and request errors through the component", { skip, timeout: 120_000 }, async () => {
  const { instantiate, getCoreModule } = await transpileComponent();
  const ledger = [];
  const imp = await imports(
    { clock: { start_ms: 1_795_525_681_123, step_ms: 1000 }, random_seed: "jco-failures", signing_seed: "07".repeat(32) },
    ledger,
  );
  // Faults to inject: jco binds the import functions when it instantiates,
  // so they are wrapped first (the versioned and the plain name share these
  // objects).
  const faults = { append: null, sign: null };
  const storage = imp["lexecon:governance/storage@0.1.0"];
  const signer = imp["lexecon:governance/signer@0.1.0"];
  const [append, sign] = [storage.append, signer.sign];
  storage.append = (entries) => (faults.append ? faults.append() : append(entries));
  signer.sign = (message) => (faults.sign ? faults.sign() : sign(message));
  const gov = instantiate(getCoreModule, imp).engine.Governor.open({ nodeId: "jco", defaultTokenTtl: 300n, maxTokenTtl: 3600n });
  gov.loadPolicy(readFileSync(join(repoRoot, "examples/policies/ai_assistant.json"), "utf8"));
  assert.equal(ledger.length, 1);
  const search = witRequest({ actor: "model", proposed_action: "Execute web_search", tool: "web_search", user_intent: "Research", risk_level: 1 });

  // Storage fails: the decision fails with that error and nothing is written.
  faults.append = () => {
    throw { tag: "unavailable", val: "disk gone" };
  };
  const stored = payloadOf(() => gov.decide(search));
  assert.equal(stored.tag, "storage");
  assert.equal(stored.val.tag, "unavailable");
  assert.match(stored.val.val, /disk gone/);
  faults.append = null;
  assert.equal(ledger.length, 1);
  assert.equal(gov.head().len, 1n);

  // The signer fails: the same, as a signer error.
  faults.sign = () => {
    throw { tag: "unavailable", val: "hsm offline" };
  };
  const signed = payloadOf(() => gov.decide(search));
  assert.equal(signed.tag, "signer");
  assert.match(signed.val.val, /hsm offline/);
  faults.sign = null;
  assert.equal(ledger.length, 1);

  // Then decisions go on from the same head.
  const d = gov.decide(search);
  assert.equal(d.allowed, true, d.reason);
  assert.equal(d.ledgerIndex, 1n);
  assert.equal(ledger.length, 2);

  // Tokens: valid for their tool, refused for another, malformed ones named.
  const claims = gov.verifyToken(d.capabilityToken.token, "web_search", "model");
  assert.equal(claims.decisionHash, d.decisionHash);
  assert.equal(payloadOf(() => gov.verifyToken(d.capabilityToken.token, "execute", undefined)).tag, "wrong-tool");
  assert.equal(payloadOf(() => gov.verifyToken(d.capabilityToken.token, undefined, "someone")).tag, "wrong-actor");
  assert.equal(payloadOf(() => gov.verifyToken("lxc2.nope", undefined, undefined)).tag, "malformed");

  // Lookups by index and by hash (through the storage's `find`).
  assert.equal(gov.entry(1n).entryHash, d.ledgerEntryHash);
  assert.equal(gov.entryByHash(d.ledgerEntryHash).index, 1n);
  assert.equal(gov.entry(7n), undefined);
  assert.equal(gov.entryByHash("0".repeat(64)), undefined);

  // A request the engine refuses is a request error naming the field, not a decision.
  const refused = payloadOf(() => gov.decide({ ...search, riskLevel: 9 }));
  assert.equal(refused.tag, "request");
  assert.equal(refused.val.field, "risk_level");
  assert.equal(ledger.length, 2);

  // A second writer appended behind this engine's back: catch up, then go on.
  const other = instantiate(getCoreModule, imp).engine.Governor.open({ nodeId: "jco", defaultTokenTtl: 300n, maxTokenTtl: 3600n });
  assert.equal(other.decide(search).ledgerIndex, 2n);
  const after = gov.decide(search);
  assert.equal(after.ledgerIndex, 3n);
  const report = gov.verifyLedger();
  assert.equal(report.valid, true);
  assert.equal(report.entries, 4n);

  // A key given twice in `context` is refused, at any depth (the first and
  // the last value would read differently to two parsers).
  for (const [context, field] of [
    ['{"user_approved": false, "user_approved": true}', "context"],
    ['{"x": {"a": 1, "a": 2}}', "context.x"],
  ]) {
    const dup = payloadOf(() => gov.decide({ ...search, context }));
    assert.equal(dup.tag, "request");
    assert.equal(dup.val.field, field);
    assert.match(dup.val.message, /duplicate key/);
  }
  assert.equal(ledger.length, 4);

  // Entries this engine committed, cut off the end: not "valid".
  const cut = ledger.pop();
  const short = gov.verifyLedger();
  assert.equal(short.valid, false);
  assert.equal(short.firstInvalid, 3n);
  assert.equal(short.failure.kind, "missing");
  assert.match(short.failure.message, /committed 4 entries/);
  ledger.push(cut);
  assert.equal(gov.verifyLedger().valid, true);

  // A signer whose signatures do not verify with its public key is refused
  // when a governor opens, before any decision carries its signature.
  faults.sign = () => new Uint8Array(64);
  const refusedOpen = payloadOf(() =>
    instantiate(getCoreModule, imp).engine.Governor.open({ nodeId: "jco", defaultTokenTtl: 300n, maxTokenTtl: 3600n }),
  );
  faults.sign = null;
  assert.equal(refusedOpen.tag, "signer");
  assert.match(refusedOpen.val.val, /does not verify with its public key/);
  assert.equal(ledger.length, 4);
});
