// Fail closed: a decision resolves only after storage acknowledged its
// entry; when storage rejects (or lies about the index) the decision
// rejects, the chain head does not move, and the next decision is fine.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Lexecon, LexeconStorageError, memoryStorage } from "lexecon";
import { guidePolicy, search, SEED } from "./helpers.js";

/** An async adapter whose next appends can be made to fail. */
function flakyStorage() {
  const inner = memoryStorage();
  const s = {
    failNext: 0,
    failAfterWrite: 0,
    wrongIndex: 0,
    failLength: 0,
    appends: 0,
    async append(bytes, meta) {
      await new Promise((r) => setTimeout(r, 1));
      s.appends++;
      if (s.failNext > 0) {
        s.failNext--;
        throw new Error("database is down");
      }
      const index = inner.append(bytes, meta);
      if (s.failAfterWrite > 0) {
        // Stored, but the acknowledgement was lost (a timeout after commit).
        s.failAfterWrite--;
        throw new Error("connection reset before the acknowledgement");
      }
      if (s.wrongIndex > 0) {
        s.wrongIndex--;
        return index + 7;
      }
      return index;
    },
    async get(i) {
      return inner.get(i);
    },
    async length() {
      if (s.failLength > 0) {
        s.failLength--;
        throw new Error("database is down");
      }
      return inner.length();
    },
  };
  return s;
}

test("a rejecting async adapter rejects the decision and leaves the chain unchanged", async () => {
  const storage = flakyStorage();
  const gov = await Lexecon.create({ nodeId: "n1", policy: guidePolicy(), storage, signingKey: SEED });
  const first = await gov.decide(search);
  const head = gov.head;
  assert.equal(head.length, 2);

  storage.failNext = 1;
  await assert.rejects(gov.decide(search), (e) => {
    assert.ok(e instanceof LexeconStorageError);
    assert.equal(e.code, "storage");
    assert.match(e.message, /database is down/);
    return true;
  });
  assert.deepEqual(gov.head, head, "the head did not advance");
  assert.equal(await storage.length(), 2, "nothing was stored");

  const next = await gov.decide(search);
  assert.equal(next.ledger_index, 2, "the next decision takes the slot the failed one did not");
  assert.equal(JSON.parse(new TextDecoder().decode(await storage.get(2))).prev_hash, first.ledger_entry_hash);
  assert.equal((await gov.verifyLedger()).valid, true);
});

test("an acknowledgement lost after the write: rejected, then resynced from storage", async () => {
  const storage = flakyStorage();
  const gov = await Lexecon.create({ nodeId: "n1", policy: guidePolicy(), storage, signingKey: SEED });
  storage.failAfterWrite = 1;
  await assert.rejects(gov.decide(search), LexeconStorageError);
  // Storage holds the entry; the node caught up with it instead of forking.
  assert.equal(await storage.length(), 2);
  assert.equal(gov.head.length, 2);
  const next = await gov.decide(search);
  assert.equal(next.ledger_index, 2);
  assert.equal((await gov.verifyLedger()).valid, true);
});

test("an adapter that reports another index fails closed", async () => {
  const storage = flakyStorage();
  const gov = await Lexecon.create({ nodeId: "n1", policy: guidePolicy(), storage, signingKey: SEED });
  storage.wrongIndex = 1;
  await assert.rejects(gov.decide(search), /stored entry 1 at index 8/);
  const next = await gov.decide(search);
  assert.equal(next.ledger_index, 2);
  assert.equal((await gov.verifyLedger()).valid, true);
});

test("a batch that fails half way: rejected, the stored half is applied, the chain stays linked", async () => {
  const storage = flakyStorage();
  const gov = await Lexecon.create({ nodeId: "n1", policy: guidePolicy(), storage, signingKey: SEED });
  const append = storage.append;
  let calls = 0;
  storage.append = async (b, m) => {
    calls++;
    if (calls === 2) throw new Error("disk full");
    return append(b, m);
  };
  await assert.rejects(gov.decideBatch([search, search, search]), /disk full/);
  assert.equal(await storage.length(), 2, "policy + the first decision of the batch");
  assert.equal(gov.head.length, 2, "the node applied exactly what storage holds");
  storage.append = append;
  const next = await gov.decide(search);
  assert.equal(next.ledger_index, 2);
  assert.equal((await gov.verifyLedger()).valid, true);
});

test("when even the resync fails, the node stays closed until storage answers", async () => {
  const storage = flakyStorage();
  const gov = await Lexecon.create({ nodeId: "n1", policy: guidePolicy(), storage, signingKey: SEED });
  storage.failNext = 1;
  storage.failLength = 2; // the resync after the failure, and the retry before the next call
  await assert.rejects(gov.decide(search), /database is down/);
  await assert.rejects(gov.decide(search), (e) => e instanceof LexeconStorageError && /unavailable/.test(e.message));
  const ok = await gov.decide(search);
  assert.equal(ok.ledger_index, 1);
});

test("concurrent decide calls are serialised onto one chain", async () => {
  const storage = flakyStorage();
  const gov = await Lexecon.create({ nodeId: "n1", policy: guidePolicy(), storage, signingKey: SEED });
  storage.failNext = 0;
  const results = await Promise.allSettled(Array.from({ length: 20 }, () => gov.decide(search)));
  const indexes = results.map((r) => (r.status === "fulfilled" ? r.value.ledger_index : -1));
  assert.deepEqual(indexes, Array.from({ length: 20 }, (_, i) => i + 1));
  assert.equal((await gov.verifyLedger()).entries, 21);
});

/** A synchronous adapter (like memoryStorage) whose next appends can throw, or call back into the node. */
function syncStorage() {
  const inner = memoryStorage();
  const s = {
    failNext: 0,
    /** @type {(() => void) | null} */ duringAppend: null,
    append(bytes, meta) {
      if (s.failNext > 0) {
        s.failNext--;
        throw new Error("disk full");
      }
      const index = inner.append(bytes, meta);
      const hook = s.duringAppend;
      s.duringAppend = null;
      hook?.();
      return index;
    },
    get: (i) => inner.get(i),
    length: () => inner.length(),
  };
  return s;
}

test("with synchronous storage a decision is stored before decide returns, and calls stay in order", async () => {
  const storage = syncStorage();
  const gov = await Lexecon.create({ nodeId: "n1", policy: guidePolicy(), storage, signingKey: SEED });
  const pending = gov.decide(search);
  assert.equal(storage.length(), 2, "stored in the call");
  assert.equal(gov.head.length, 2, "committed in the call");
  const more = Array.from({ length: 20 }, () => gov.decide(search));
  const indexes = (await Promise.all([pending, ...more])).map((d) => d.ledger_index);
  assert.deepEqual(indexes, Array.from({ length: 21 }, (_, i) => i + 1));
  assert.equal((await gov.verifyLedger()).entries, 22);
});

test("a synchronous adapter that throws: rejected, chain unchanged, calls made meanwhile wait for the resync", async () => {
  const storage = syncStorage();
  const gov = await Lexecon.create({ nodeId: "n1", policy: guidePolicy(), storage, signingKey: SEED });
  const head = gov.head;
  storage.failNext = 1;
  const failed = gov.decide(search);
  const next = gov.decide(search); // made while the failed one resyncs
  await assert.rejects(failed, (e) => e instanceof LexeconStorageError && /disk full/.test(e.message));
  assert.equal((await next).ledger_index, 1);
  assert.notEqual(gov.head.hash, head.hash);
  assert.equal((await gov.verifyLedger()).entries, 2);
});

test("storage that starts a decision from inside append: it waits for the one being stored", async () => {
  const storage = syncStorage();
  const gov = await Lexecon.create({ nodeId: "n1", policy: guidePolicy(), storage, signingKey: SEED });
  /** @type {Promise<any> | undefined} */
  let inner;
  storage.duringAppend = () => {
    inner = gov.decide({ ...search, request_id: "from-append" });
  };
  const outer = await gov.decide({ ...search, request_id: "outer" });
  assert.ok(inner, "append ran the hook");
  const second = await inner;
  assert.equal(outer.ledger_index, 1);
  assert.equal(second.ledger_index, 2);
  assert.equal(second.request_id, "from-append");
  assert.deepEqual(await gov.verifyLedger(), { valid: true, entries: 3, headHash: second.ledger_entry_hash });
});

test("storage that starts a decision from inside an async append: it waits too", async () => {
  const storage = flakyStorage();
  const gov = await Lexecon.create({ nodeId: "n1", policy: guidePolicy(), storage, signingKey: SEED });
  const append = storage.append;
  /** @type {Promise<any> | undefined} */
  let inner;
  storage.append = (bytes, meta) => {
    storage.append = append;
    inner = gov.decide({ ...search, request_id: "from-append" });
    return append(bytes, meta);
  };
  const outer = await gov.decide(search);
  assert.equal(outer.ledger_index, 1);
  assert.equal((await inner).ledger_index, 2);
  assert.equal((await gov.verifyLedger()).entries, 3);
});
