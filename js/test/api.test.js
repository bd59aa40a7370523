// The in-process API: decisions, errors, tokens, the ledger.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  GENESIS_HASH,
  Lexecon,
  LexeconConfigError,
  LexeconLedgerError,
  LexeconPolicyError,
  LexeconRequestError,
  LexeconStorageError,
  memoryStorage,
  verifyToken,
} from "lexecon";
import { execute, guidePolicy, search, SEED } from "./helpers.js";

const DECISION_FIELDS = [
  "allowed",
  "capability_token",
  "decision",
  "decision_hash",
  "decision_id",
  "ledger_entry_hash",
  "ledger_index",
  "policy_version_hash",
  "reason",
  "reasoning",
  "request_id",
  "signature",
  "timestamp",
];

test("decide: allowed with a token, denied with the reason; snake_case fields", async () => {
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy(), storage: memoryStorage() });
  const d = await gov.decide(search);
  assert.deepEqual(Object.keys(d).sort(), DECISION_FIELDS);
  assert.equal(d.allowed, true);
  assert.equal(d.decision, "permit");
  assert.match(d.capability_token.token, /^lxc2\./);
  assert.equal(d.capability_token.tool, "web_search");
  assert.equal(d.capability_token.node_id, "app-1");
  assert.equal(d.ledger_index, 1);

  const no = await gov.decide(execute);
  assert.equal(no.allowed, false);
  assert.equal(no.decision, "deny");
  assert.match(no.reason, /forbid/i);
  assert.equal(no.capability_token, null);

  const risky = await gov.decide({ ...search, risk_level: 4 });
  assert.equal(risky.decision, "escalate");
});

test("an incomplete request rejects naming the missing field; a batch keeps going", async () => {
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy() });
  const { proposed_action: _, ...incomplete } = search;
  await assert.rejects(gov.decide(incomplete), (e) => {
    assert.ok(e instanceof LexeconRequestError);
    assert.equal(e.code, "invalid_request");
    assert.match(e.message, /missing field `proposed_action`/);
    assert.equal(e.field, "proposed_action");
    return true;
  });
  await assert.rejects(gov.decide({ ...search, risk_level: 9 }), (e) => e.field === "risk_level");
  for (const risk_level of [NaN, Infinity]) {
    await assert.rejects(gov.decide({ ...search, risk_level }), (e) => e.field === "risk_level" && /finite number, got/.test(e.message));
  }
  await assert.rejects(gov.decide({ ...search, risk_levle: 1 }), /unknown field `risk_levle`/);
  await assert.rejects(gov.decide(null), LexeconRequestError);
  const head = gov.head;
  assert.equal(head.length, 1, "invalid requests write nothing");

  const batch = await gov.decideBatch([search, incomplete, execute]);
  assert.equal(batch.length, 3);
  assert.equal(batch[0].allowed, true);
  assert.equal(batch[1].error.code, "invalid_request");
  assert.match(batch[1].error.message, /proposed_action/);
  assert.equal(batch[2].allowed, false);
  assert.equal(batch[2].ledger_index, batch[0].ledger_index + 1);

  // An array is not a request whose fields it fills by position.
  const positional = ["req_1", "model", "Execute web_search", "web_search", "Research", 1];
  const [refused] = await gov.decideBatch([positional]);
  assert.equal(refused.error.code, "invalid_request");
  assert.match(refused.error.message, /expected a decision request \(a JSON object\)/);
  await assert.rejects(gov.loadPolicy(["Seq", "2.0", "permissive"]), (e) => e.code === "invalid_policy");
  assert.equal(gov.head.length, head.length + 2, "nothing refused is recorded");
});

test("policy errors carry path, line and column; a policy is recorded once", async () => {
  const gov = await Lexecon.create({ nodeId: "app-1" });
  await assert.rejects(gov.loadPolicy('{\n  "name": "p",\n  "mode": "loose"\n}'), (e) => {
    assert.ok(e instanceof LexeconPolicyError);
    assert.equal(e.code, "invalid_policy");
    assert.equal(e.path, "mode");
    assert.equal(e.line, 3);
    assert.equal(typeof e.column, "number");
    return true;
  });
  // Given as an object, the text is JSON.stringify's, which the caller never
  // saw: the path alone, and what the field takes.
  await assert.rejects(gov.loadPolicy({ name: "p", mode: 5 }), (e) => {
    assert.ok(e instanceof LexeconPolicyError);
    assert.equal(e.path, "mode");
    assert.equal(e.line, null);
    assert.equal(e.column, null);
    assert.equal(e.message, "invalid policy: mode: the mode must be a string: expected `strict` or `permissive`, got a number");
    return true;
  });
  assert.equal(gov.policyHash, null);
  const no = await gov.decide(search);
  assert.match(no.reason, /no policy/);

  const first = await gov.loadPolicy(guidePolicy());
  assert.equal(first.recorded, true);
  const again = await gov.loadPolicy(guidePolicy());
  assert.equal(again.recorded, false);
  assert.equal(again.ledger_entry_hash, first.ledger_entry_hash);
  assert.equal(gov.policyHash, first.policy_hash);
});

test("tokens verify with the node and offline; scope and tampering are caught", async () => {
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy(), signingKey: SEED });
  const { token } = (await gov.decide(search)).capability_token;
  assert.deepEqual((await gov.verifyToken(token, { tool: "web_search" })).valid, true);
  const wrong = await gov.verifyToken(token, { tool: "execute" });
  assert.equal(wrong.valid, false);
  assert.equal(wrong.error, "wrong_tool");
  const offline = verifyToken(token, { publicKey: gov.publicKey, tool: "web_search", actor: "model" });
  assert.equal(offline.valid, true);
  assert.equal(offline.claims.actor, "model");
  assert.equal(verifyToken(token, { publicKey: gov.publicKey, nowMs: Date.now() + 3_600_000 }).error, "expired");
  const forged = token.slice(0, -3) + (token.endsWith("AAA") ? "BBB" : "AAA");
  assert.equal((await gov.verifyToken(forged)).valid, false);
  assert.equal((await gov.verifyToken("nope")).error, "malformed");
  const other = await Lexecon.create({ nodeId: "other" });
  assert.equal((await other.verifyToken(token)).error, "unknown_key");
  // No expectations: null or absent.
  assert.equal((await gov.verifyToken(token, null)).valid, true);
  assert.equal(verifyToken(token, { publicKey: gov.publicKey, tool: null }).valid, true);
  // A misspelt option is refused: it must not turn the scope check off.
  const unknown = (key) => (e) => {
    assert.ok(e instanceof LexeconRequestError, String(e));
    assert.equal(e.field, key);
    assert.match(e.message, new RegExp(`unknown option \`${key}\``));
    return true;
  };
  await assert.rejects(gov.verifyToken(token, { tol: "execute" }), unknown("tol"));
  await assert.rejects(other.verifyToken(token, { publicKey: gov.publicKey }), (e) => unknown("publicKey")(e) && /verifyToken\(token, \{ publicKey \}\)/.test(e.message));
  assert.throws(() => verifyToken(token, { publicKey: gov.publicKey, tol: "execute" }), unknown("tol"));
});

test("token checks refuse what they cannot use, and the engine survives it", async () => {
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy(), signingKey: SEED });
  const { token } = (await gov.decide(search)).capability_token;
  const field = (name) => (e) => {
    assert.ok(e instanceof LexeconRequestError, String(e));
    assert.equal(e.field, name);
    assert.match(e.message, new RegExp(`^${name} must be a string`));
    return true;
  };
  // Non-strings never reach the engine: once they corrupted its memory and,
  // after some dozens of calls, crashed the process.
  for (let i = 0; i < 300; i++) {
    assert.throws(() => verifyToken(token, { publicKey: gov.publicKey, tool: 5 }), field("tool"));
    await assert.rejects(gov.verifyToken(token, { actor: { name: "model" } }), field("actor"));
  }
  await assert.rejects(gov.verifyToken(token, "web_search"), LexeconRequestError);
  // A time that is not a time is an error, never a time when nothing has expired.
  for (const nowMs of [NaN, Infinity, -1, "1700000000000"]) {
    assert.throws(() => verifyToken(token, { publicKey: gov.publicKey, nowMs }), LexeconConfigError, String(nowMs));
  }
  // The engine still decides and its ledger still verifies.
  assert.equal((await gov.decide(search)).allowed, true);
  assert.equal((await gov.verifyLedger()).valid, true);
});

test("signing keys: the same seed gives the same key; bad keys are refused", async () => {
  const a = await Lexecon.create({ nodeId: "a", signingKey: SEED });
  const b = await Lexecon.create({ nodeId: "b", signingKey: Uint8Array.from(Buffer.from(SEED, "hex")) });
  assert.equal(a.publicKey, b.publicKey);
  assert.match(a.keyId, /^ed25519:[0-9a-f]{16}$/);
  const c = await Lexecon.create({ nodeId: "c" });
  assert.notEqual(c.publicKey, a.publicKey, "generated when absent");
  await assert.rejects(Lexecon.create({ nodeId: "x", signingKey: "abc" }), LexeconConfigError);
  // A Rust host node's PEM files, as `lexecon init` writes them (PKCS#8 v2
  // with the public key; SPKI), and PKCS#8 v1.
  const pem = (label, hex) => `-----BEGIN ${label}-----\n${Buffer.from(hex, "hex").toString("base64")}\n-----END ${label}-----\n`;
  const v2 = pem("PRIVATE KEY", `3051020101300506032b657004220420${SEED}812100${a.publicKey}`);
  const v1 = pem("PRIVATE KEY", `302e020100300506032b657004220420${SEED}`);
  const spki = pem("PUBLIC KEY", `302a300506032b6570032100${a.publicKey}`);
  for (const signingKey of [v1, v2]) {
    assert.equal((await Lexecon.create({ nodeId: "pem", signingKey })).publicKey, a.publicKey);
  }
  const signer = await Lexecon.create({ nodeId: "a", policy: guidePolicy(), signingKey: v2 });
  const { token } = (await signer.decide(search)).capability_token;
  assert.equal(verifyToken(token, { publicKey: spki }).valid, true);
  await assert.rejects(Lexecon.create({ nodeId: "x", signingKey: spki }), /takes a "PRIVATE KEY" PEM, not "PUBLIC KEY"/);
  assert.throws(() => verifyToken(token, { publicKey: v2 }), /takes a "PUBLIC KEY" PEM/);
  await assert.rejects(Lexecon.create({ nodeId: "x", signingKey: pem("PRIVATE KEY", "3051") }), /not an Ed25519 private key/);
  await assert.rejects(Lexecon.create({ nodeId: "x", signingKey: new Uint8Array(31) }), LexeconConfigError);
  await assert.rejects(Lexecon.create({ nodeId: "" }), LexeconConfigError);
  await assert.rejects(Lexecon.create({ nodeId: "x", storage: {} }), LexeconConfigError);
});

test("reopening a ledger replays it: same head, same policy, no duplicate policy entry", async () => {
  const storage = memoryStorage();
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy(), storage, signingKey: SEED });
  await gov.decideBatch([search, execute, search]);
  const reopened = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy(), storage, signingKey: SEED });
  assert.deepEqual(reopened.head, gov.head);
  assert.equal(reopened.policyHash, gov.policyHash);
  assert.equal(storage.length(), 4, "the already-active policy was not recorded again");
  const d = await reopened.decide(search);
  assert.equal(d.ledger_index, 4);
});

test("verifyLedger finds an altered entry; opening an altered ledger fails closed", async () => {
  const inner = memoryStorage();
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy(), storage: inner });
  await gov.decideBatch([search, execute, search]); // entries 1..3
  // A later policy without rate limits: opening reads back to its entry only.
  const plain = guidePolicy();
  plain.constraints = plain.constraints.filter((c) => c.action !== "rate_limit");
  await gov.loadPolicy(plain); // entry 4
  await gov.decideBatch([search, execute]); // entries 5, 6
  const good = await gov.verifyLedger();
  assert.deepEqual(good, { valid: true, entries: 7, headHash: gov.head.hash });

  /** The ledger with entry `at`'s bytes rewritten. */
  const altered = (at, from, to) => {
    const storage = {
      ...inner,
      get(i) {
        const b = inner.get(i);
        if (i !== at || !b) return b;
        const text = new TextDecoder().decode(b);
        assert.ok(text.includes(from), `entry ${at} holds ${from}`);
        return new TextEncoder().encode(text.replace(from, to));
      },
    };
    delete storage.getRange;
    return storage;
  };
  const corrupt = (index) => (e) => {
    assert.ok(e instanceof LexeconLedgerError, String(e));
    assert.equal(e.code, "ledger_corrupt");
    assert.match(e.message, new RegExp(`entry ${index}: content does not match its entry_hash`));
    return true;
  };
  // What opening reads (back to the latest policy load) is checked: an altered
  // policy entry, or decision at the head, does not open.
  await assert.rejects(Lexecon.create({ nodeId: "v", storage: altered(4, '"forbids"', '"permits"') }), corrupt(4));
  await assert.rejects(Lexecon.create({ nodeId: "v", storage: altered(6, '"risk_level":5', '"risk_level":1') }), corrupt(6));

  // An older entry is read only by verifyLedger, or on open with verifyOnOpen.
  const older = altered(2, '"allowed":false', '"allowed":true');
  const opened = await Lexecon.create({ nodeId: "v", storage: older });
  const report = await opened.verifyLedger();
  assert.equal(report.valid, false);
  assert.equal(report.firstInvalid, 2);
  await assert.rejects(Lexecon.create({ nodeId: "v", storage: older, verifyOnOpen: true }), (e) => {
    assert.ok(e instanceof LexeconLedgerError);
    assert.equal(e.code, "ledger_corrupt");
    return true;
  });
});

test("verifyLedger reports the first invalid entry", async () => {
  const inner = memoryStorage();
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy(), storage: inner });
  await gov.decideBatch([search, execute, search]);
  let tamper = false;
  const storage = {
    append: (b, m) => inner.append(b, m),
    length: () => inner.length(),
    get(i) {
      const b = inner.get(i);
      if (tamper && i === 2) return new TextDecoder().decode(b).replace('"risk_level":5', '"risk_level":1');
      return b;
    },
  };
  const node = await Lexecon.create({ nodeId: "app-1", storage });
  tamper = true;
  const report = await node.verifyLedger();
  assert.equal(report.valid, false);
  assert.equal(report.firstInvalid, 2);
  assert.equal(report.entries, 2);
  assert.equal(report.failure.kind, "hash_mismatch");
});

test("verifyLedger holds storage to the head this node committed", async () => {
  // Two nodes with the same key, clock and random stream write the same
  // entries 0..2, then differ at entry 3.
  const same = { nodeId: "app-1", signingKey: "42".repeat(32), deterministic: { clock: { start_ms: 1_795_525_681_123, step_ms: 1000 }, random_seed: "twin" } };
  const inner = memoryStorage();
  const gov = await Lexecon.create({ ...same, policy: guidePolicy(), storage: inner });
  await gov.decideBatch([search, execute, search]); // entries 1..3
  const other = memoryStorage();
  const twin = await Lexecon.create({ ...same, policy: guidePolicy(), storage: other });
  await twin.decideBatch([search, execute, execute]);
  assert.deepEqual(other.get(2), inner.get(2));
  assert.notDeepEqual(other.get(3), inner.get(3));

  // This node, reading storage through a view the test changes.
  let view = (i) => inner.get(i);
  let length = () => inner.length();
  const storage = { append: (b, m) => inner.append(b, m), length: () => length(), get: (i) => view(i) };
  const node = await Lexecon.create({ ...same, storage });
  assert.equal(node.head.length, 4);
  assert.equal((await node.verifyLedger()).valid, true);

  // The last two entries cut off: the rest is a valid chain on its own.
  length = () => 2;
  const short = await node.verifyLedger();
  assert.equal(short.valid, false);
  assert.equal(short.firstInvalid, 2);
  assert.equal(short.entries, 2);
  assert.equal(short.failure.kind, "missing");
  assert.match(short.failure.message, /committed 4 entries/);

  // Entry 3 replaced by the twin's: a valid chain, but not this node's.
  length = () => inner.length();
  view = (i) => (i === 3 ? other.get(3) : inner.get(i));
  const rewritten = await node.verifyLedger();
  assert.equal(rewritten.valid, false);
  assert.equal(rewritten.firstInvalid, 3);
  assert.equal(rewritten.entries, 3);
  assert.equal(rewritten.failure.kind, "hash_mismatch");
  assert.match(rewritten.failure.message, /rewritten at or before/);
  // The twin's own ledger is valid: only the committed head tells them apart.
  assert.equal((await twin.verifyLedger()).valid, true);
});

test("verifyLedger({ signatures: true }) finds a rewrite with recomputed hashes", async () => {
  const inner = memoryStorage();
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy(), storage: inner, signingKey: SEED });
  await gov.decideBatch([search, execute, search]); // entries 1..3; 2 is a denial
  assert.deepEqual(await gov.verifyLedger({ signatures: true }), { valid: true, entries: 4, headHash: gov.head.hash });

  // Entry 2's denial turned into a permit, its decision_hash and every
  // entry hash from it on recomputed, as an attacker with write access to
  // storage but not the key would.
  const sha256 = async (text) =>
    [...new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)))]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
  const canonical = (v) =>
    Array.isArray(v)
      ? `[${v.map(canonical).join(",")}]`
      : v !== null && typeof v === "object"
        ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`
        : JSON.stringify(v);
  /** `inner`'s entries, parsed. */
  const parsed = () => Array.from({ length: inner.length() }, (_, i) => JSON.parse(new TextDecoder().decode(inner.get(i))));
  /** The entries' bytes with every entry hash and link recomputed, as a read-only adapter. */
  const relink = async (list) => {
    const out = [];
    for (const [i, e] of list.entries()) {
      const { entry_hash: _, ...rest } = e;
      if (i > 0) rest.prev_hash = out[i - 1].entry_hash;
      out.push({ entry_hash: await sha256(canonical(rest)), ...rest });
    }
    const bytes = out.map((e) => new TextEncoder().encode(canonical(e)));
    return { hashes: out.map((e) => e.entry_hash), storage: { append: () => Promise.reject(new Error("read only")), get: (i) => bytes[i] ?? null, length: () => bytes.length } };
  };
  const entries = parsed();
  // The canonical form as this test writes it is the stored one.
  for (const e of entries) {
    const { entry_hash, ...rest } = e;
    assert.equal(await sha256(canonical(rest)), entry_hash);
  }
  const record = entries[2].payload.record;
  assert.equal(record.allowed, false);
  record.allowed = true;
  entries[2].payload.decision_hash = await sha256(canonical(record));
  const { hashes: rewritten, storage } = await relink(entries);

  // A node opened on it sees a valid chain; the signatures give it away.
  const node = await Lexecon.create({ nodeId: "app-1", storage, signingKey: SEED });
  assert.deepEqual(await node.verifyLedger(), { valid: true, entries: 4, headHash: rewritten[3] });
  const report = await node.verifyLedger({ signatures: true });
  assert.equal(report.valid, false);
  assert.equal(report.firstInvalid, 2);
  assert.equal(report.entries, 2);
  assert.equal(report.headHash, rewritten[1]);
  assert.equal(report.failure.index, 2);
  assert.equal(report.failure.kind, "bad_signature");
  assert.match(report.failure.message, /signature/);
  assert.match(report.failure.message, /only the signatures show it/);

  // Without its decision_hash recomputed, the record no longer matches it.
  entries[2].payload.decision_hash = JSON.parse(new TextDecoder().decode(inner.get(2))).payload.decision_hash;
  const staleNode = await Lexecon.create({
    nodeId: "app-1",
    storage: (await relink(entries)).storage,
    signingKey: SEED,
  });
  const altered = await staleNode.verifyLedger({ signatures: true });
  assert.equal(altered.firstInvalid, 2);
  assert.match(altered.failure.message, /not the SHA-256 of its record/);

  // The policy load rewritten to name another policy, hashes recomputed:
  // entry 1, decided under the real one, names it.
  const policyEntries = parsed();
  const realPolicy = policyEntries[0].payload.policy_hash;
  policyEntries[0].payload.policy_hash = "f".repeat(64);
  const relinkedNode = await Lexecon.create({ nodeId: "app-1", storage: (await relink(policyEntries)).storage, signingKey: SEED });
  assert.equal((await relinkedNode.verifyLedger()).valid, true);
  const policyReport = await relinkedNode.verifyLedger({ signatures: true });
  assert.equal(policyReport.valid, false, JSON.stringify(policyReport));
  assert.equal(policyReport.firstInvalid, 1);
  assert.equal(policyReport.failure.kind, "policy_mismatch");
  assert.match(policyReport.failure.message, new RegExp(`decided under policy ${realPolicy}, but the policy in force there is f{64} \\(loaded by entry 0\\)`));

  // The original ledger, opened with another key: signed, but not by this node.
  const other = await Lexecon.create({ nodeId: "app-1", storage: inner, signingKey: "08".repeat(32) });
  const foreign = await other.verifyLedger({ signatures: true });
  assert.equal(foreign.valid, false);
  assert.equal(foreign.firstInvalid, 1);
  assert.equal(foreign.failure.kind, "bad_signature");
  assert.match(foreign.failure.message, /signed by key \S+, not this node's key/);

  // A misspelt or mistyped option is refused, never ignored.
  await assert.rejects(other.verifyLedger({ signature: true }), (e) => {
    assert.ok(e instanceof LexeconRequestError, String(e));
    assert.match(e.message, /unknown option `signature` for verifyLedger \(known: signatures\)/);
    return true;
  });
  await assert.rejects(other.verifyLedger({ signatures: "yes" }), /signatures must be a boolean, got string/);
  await assert.rejects(other.verifyLedger(true), /options must be an object/);
});

test("misspelt options, NaN in a batch, bad entry lookups and storage failures: clear errors, nothing recorded", async () => {
  await assert.rejects(Lexecon.create({ nodeId: "n", verifyOnopen: true }), (e) => {
    assert.ok(e instanceof LexeconConfigError, String(e));
    assert.match(e.message, /^unknown option `verifyOnopen` for Lexecon.create \(known: nodeId, policy, .*verifyOnOpen\)$/);
    return true;
  });
  await assert.rejects(Lexecon.create({ nodeId: "n", verifyOnOpen: "yes" }), /verifyOnOpen must be a boolean, got string/);

  const inner = memoryStorage();
  let failing = "";
  const storage = {
    append: (b, m) => inner.append(b, m),
    get: (i) => (failing === "get" ? Promise.reject(new Error("disk on fire")) : failing === "junk" ? "not json" : inner.get(i)),
    length: () => (failing === "length" ? Promise.reject(new Error("db offline")) : inner.length()),
    find: (h) => (failing === "find" ? Promise.reject(new Error("index offline")) : inner.find(h)),
  };
  const gov = await Lexecon.create({ nodeId: "n", policy: guidePolicy(), storage });

  // NaN and Infinity get the error decide gives them, in their own slot.
  const out = await gov.decideBatch([search, { ...search, token_ttl: Infinity }, { ...search, risk_level: NaN }, search]);
  assert.equal(out[0].allowed, true);
  assert.deepEqual(out[1], { error: { code: "invalid_request", field: "token_ttl", message: "must be a finite number, got Infinity" } });
  assert.deepEqual(out[2], { error: { code: "invalid_request", field: "risk_level", message: "must be a finite number, got NaN" } });
  assert.equal(out[3].ledger_index, out[0].ledger_index + 1, "nothing was recorded for the refused ones");
  assert.equal(gov.head.length, 3);

  for (const [arg, message] of [
    [null, /expected a ledger index or an entry hash, got null/],
    [{}, /got object/],
    [-1, /expected a ledger index \(a whole number from 0\), got -1/],
    [1.5, /got 1.5/],
    ["1", /expected a ledger entry hash: 64 hexadecimal digits/],
  ]) {
    await assert.rejects(gov.getLedgerEntry(/** @type {any} */ (arg)), (e) => e instanceof LexeconRequestError && message.test(e.message));
  }
  // An upper-case hash finds the entry, as on the server.
  assert.equal((await gov.getLedgerEntry(out[3].ledger_entry_hash.toUpperCase())).index, 2);
  assert.equal(await gov.getLedgerEntry("0".repeat(64)), null);
  assert.equal(await gov.getLedgerEntry(99), null);

  const storageFailure = (pattern) => (e) => {
    assert.ok(e instanceof LexeconStorageError, String(e));
    assert.equal(e.code, "storage");
    assert.match(e.message, pattern);
    return true;
  };
  failing = "get";
  await assert.rejects(gov.getLedgerEntry(1), storageFailure(/could not read entry 1: disk on fire/));
  failing = "junk";
  await assert.rejects(gov.getLedgerEntry(1), storageFailure(/entry 1 that is not a ledger entry/));
  failing = "find";
  await assert.rejects(gov.getLedgerEntry(out[0].ledger_entry_hash), storageFailure(/could not find the entry: index offline/));
  failing = "length";
  await assert.rejects(gov.verifyLedger(), storageFailure(/could not read the ledger's length: db offline/));
});

test("getLedgerEntry by index and by hash", async () => {
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy() });
  const d = await gov.decide(search);
  const byHash = await gov.getLedgerEntry(d.ledger_entry_hash);
  assert.equal(byHash.index, d.ledger_index);
  assert.equal(byHash.kind, "decision");
  assert.equal(byHash.payload.decision_hash, d.decision_hash);
  // The same shape as the server's GET /ledger/entries/{hash}.
  assert.equal(byHash.decision_hash, d.decision_hash);
  const zero = await gov.getLedgerEntry(0);
  assert.equal(zero.kind, "policy_load");
  assert.equal(zero.policy_hash, gov.policyHash);
  assert.equal(zero.prev_hash, GENESIS_HASH);
  assert.equal(await gov.getLedgerEntry("0".repeat(64)), null);
  assert.equal(await gov.getLedgerEntry(99), null);
});

test("memoryStorage keeps every entry intact across its shared buffers, small and large", async () => {
  const storage = memoryStorage();
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy(), storage });
  const big = { ...search, context: { note: "x".repeat(40_000) } };
  const decided = [];
  // ~1.3 KB entries fill several 64 KiB chunks; the 40 KB ones get their own buffer.
  for (let i = 0; i < 150; i++) decided.push(await gov.decide(i % 50 === 7 ? big : i % 2 ? search : execute));
  assert.deepEqual(await gov.verifyLedger(), { valid: true, entries: 151, headHash: gov.head.hash });
  for (const d of decided) {
    const entry = JSON.parse(new TextDecoder().decode(storage.get(d.ledger_index)));
    assert.equal(entry.entry_hash, d.ledger_entry_hash);
    assert.equal(storage.find(d.ledger_entry_hash), d.ledger_index);
  }
  // What get returns is a copy: changing it changes nothing stored.
  storage.get(1).fill(0);
  assert.deepEqual(await gov.verifyLedger(), { valid: true, entries: 151, headHash: gov.head.hash });
});

test("memoryStorage finds entries appended before and after its hash index is built; get and getRange stay in bounds", async () => {
  const storage = memoryStorage();
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy(), storage });
  const before = [];
  for (let i = 0; i < 60; i++) before.push(await gov.decide(i % 2 ? search : execute));
  // The first find builds the index from the stored bytes...
  assert.equal(storage.find("0".repeat(64)), null);
  const after = [];
  // ...and later appends (with Lexecon's head, and without) extend it.
  for (let i = 0; i < 60; i++) after.push(await gov.decide(i % 2 ? search : execute));
  const outside = memoryStorage();
  for (let i = 0; i < storage.length(); i++) outside.append(storage.get(i));
  for (const d of [...before, ...after]) {
    assert.equal(storage.find(d.ledger_entry_hash), d.ledger_index);
    assert.equal(outside.find(d.ledger_entry_hash), d.ledger_index);
  }
  assert.equal(storage.length(), 121);
  for (const i of [-1, 121, 1.5, NaN]) assert.equal(storage.get(i), null, `get(${i})`);
  assert.deepEqual(storage.getRange(119, 500), [storage.get(119), storage.get(120)]);
  assert.deepEqual(storage.getRange(-5, 2), [storage.get(0), storage.get(1)]);
  assert.deepEqual(storage.getRange(5, 5), []);
  assert.equal(storage.getRange(0).length, 121);
});

test("a wrapper around memoryStorage gets bytes of its own, which it may keep past the call", async () => {
  // memoryStorage itself is handed a view of WebAssembly memory (it copies
  // at once); a wrapper spreading it must not inherit that.
  const inner = memoryStorage();
  const kept = [];
  const storage = {
    ...inner,
    async append(bytes, meta) {
      kept.push(bytes);
      await new Promise((resolve) => setTimeout(resolve, 1));
      return inner.append(bytes, meta);
    },
  };
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy(), storage });
  await Promise.all([gov.decide(search), gov.decide(execute), gov.decideBatch([search, execute])]);
  assert.deepEqual(await gov.verifyLedger(), { valid: true, entries: 5, headHash: gov.head.hash });
  assert.equal(kept.length, 5);
  for (const [i, bytes] of kept.entries()) {
    assert.equal(bytes.byteLength, bytes.buffer.byteLength, `append ${i} got a view into a larger buffer`);
    assert.deepEqual(bytes, inner.get(i));
  }
});

test("a call that waits its turn decides the request as it was when called", async () => {
  // Slow async storage queues every call behind the first: each must still
  // decide what its caller passed, not what the object holds by its turn.
  const inner = memoryStorage();
  const storage = {
    ...inner,
    async append(bytes, meta) {
      await new Promise((resolve) => setTimeout(resolve, 2));
      return inner.append(bytes.slice(), meta);
    },
  };
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy(), storage });
  const request = { ...search };
  const calls = [];
  for (const [i, tool] of ["web_search", "execute", "web_search"].entries()) {
    Object.assign(request, tool === "execute" ? execute : search, { request_id: `r-${i}` });
    calls.push(gov.decide(request));
  }
  const batch = [{ ...execute, request_id: "b-0" }];
  calls.push(gov.decideBatch(batch));
  batch[0] = { ...search, request_id: "b-changed" };
  request.risk_level = NaN;
  const [first, second, third, [fourth]] = await Promise.all(calls);
  assert.deepEqual(
    [first, second, third, fourth].map((d) => [d.request_id, d.allowed]),
    [["r-0", true], ["r-1", false], ["r-2", true], ["b-0", false]],
  );
  assert.equal(second.capability_token, null);
  assert.equal((await gov.verifyLedger()).valid, true);
});

test("node settings the server refuses are refused here too", async () => {
  for (const [options, message] of [
    [{ nodeId: "a b" }, /node id `a b` is not valid/],
    [{ nodeId: "x".repeat(65) }, /is not valid: use 1 to 64/],
    [{ nodeId: "n", defaultTokenTtl: 0 }, /at least 1 second/],
    [{ nodeId: "n", defaultTokenTtl: 7200, maxTokenTtl: 60 }, /longest token lifetime \(60 s\) must not be shorter than the default \(7200 s\)/],
    // Tokens are short-lived: a lifetime of 2^53 s would outlive any check.
    [{ nodeId: "n", maxTokenTtl: 2 ** 53 }, /longest token lifetime \(9007199254740992 s\) must be at most 86400 s \(one day\)/],
    [{ nodeId: "n", defaultTokenTtl: 86_401, maxTokenTtl: 86_401 }, /must be at most 86400 s/],
    [{ nodeId: "n", defaultTokenTtl: NaN }, /^defaultTokenTtl must be a whole number of seconds, got NaN$/],
    [{ nodeId: "n", maxTokenTtl: "60" }, /^maxTokenTtl must be a whole number of seconds, got string$/],
    [{ nodeId: "n", maxTokenTtl: 1.5 }, /got 1.5/],
  ]) {
    await assert.rejects(Lexecon.create(options), (e) => {
      assert.ok(e instanceof LexeconConfigError, String(e));
      assert.match(e.message, message);
      return true;
    });
  }
  assert.equal((await Lexecon.create({ nodeId: "edge-1.eu_west" })).nodeId, "edge-1.eu_west");
});

test("memoryStorage whose append is replaced in place gets bytes it may keep", async () => {
  const storage = memoryStorage();
  const original = storage.append;
  const kept = [];
  storage.append = async (bytes, meta) => {
    kept.push(bytes);
    await new Promise((resolve) => setTimeout(resolve, 1));
    return original(bytes, meta);
  };
  const gov = await Lexecon.create({ nodeId: "app-1", policy: guidePolicy(), storage });
  await Promise.all([gov.decide(search), gov.decide(execute)]);
  assert.equal(kept.length, 3);
  for (const [i, bytes] of kept.entries()) {
    assert.equal(bytes.byteLength, bytes.buffer.byteLength, `append ${i} got a view into a larger buffer`);
    assert.deepEqual(bytes, storage.get(i));
  }
  assert.equal((await gov.verifyLedger()).valid, true);
});
