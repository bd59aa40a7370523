// fileStorage: the Rust host's on-disk format, fsynced appends, recovery of
// a torn last record, damage kept in place; and, when a `lexecon` binary is
// around, interchange with the Rust host in both directions.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, statSync, existsSync, appendFileSync, symlinkSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFile, execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Lexecon, LexeconConfigError, LexeconStorageError, fileStorage } from "lexecon";
import { fileStorage as fileStorageSubpath } from "lexecon/file";
import { execute, guidePolicy, jsRoot, repoRoot, search, SEED } from "./helpers.js";

const tmp = () => mkdtempSync(join(tmpdir(), "lexecon-js-"));

/** CRC-32/IEEE of bytes, independently of the implementation (zlib when Node has it). */
function crc32(bytes) {
  let c = ~0 >>> 0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c >>> 0;
}

async function writeLedger(path, n = 3) {
  const storage = fileStorage(path);
  const gov = await Lexecon.create({ nodeId: "file-node", policy: guidePolicy(), storage, signingKey: SEED });
  const decisions = await gov.decideBatch(Array.from({ length: n }, (_, i) => (i % 2 ? execute : search)));
  await storage.close();
  return { gov, decisions };
}

test("the file is LXLEDG01 + [len|crc32|index|hash|payload] records", async () => {
  const path = join(tmp(), "ledger.db");
  const { gov } = await writeLedger(path, 2);
  const file = readFileSync(path);
  assert.equal(file.subarray(0, 8).toString("latin1"), "LXLEDG01");
  let offset = 8;
  let index = 0;
  while (offset < file.length) {
    const len = file.readUInt32LE(offset);
    const crc = file.readUInt32LE(offset + 4);
    assert.equal(Number(file.readBigUInt64LE(offset + 8)), index);
    const hash = file.subarray(offset + 16, offset + 48).toString("hex");
    const payload = file.subarray(offset + 48, offset + 48 + len);
    assert.equal(crc, crc32(file.subarray(offset + 8, offset + 48 + len)), `crc of record ${index}`);
    assert.equal(JSON.parse(payload.toString("utf8")).entry_hash, hash);
    offset += 48 + len;
    index++;
  }
  assert.equal(offset, file.length);
  assert.equal(index, gov.head.length);
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926);
});

test("reopening replays the file; appends continue the chain", async () => {
  const path = join(tmp(), "ledger.db");
  const { gov, decisions } = await writeLedger(path, 3);
  const storage = fileStorageSubpath(path);
  const again = await Lexecon.create({ nodeId: "file-node", policy: guidePolicy(), storage, signingKey: SEED });
  assert.deepEqual(again.head, gov.head);
  assert.equal(await storage.find(decisions[1].ledger_entry_hash), 2);
  const d = await again.decide(search);
  assert.equal(d.ledger_index, 4);
  assert.equal((await again.verifyLedger()).valid, true);
  await storage.close();
});

test("a second writer in the same process is refused until the first closes", async () => {
  const path = join(tmp(), "ledger.db");
  const a = fileStorage(path);
  await a.open();
  const b = fileStorage(path);
  await assert.rejects(b.open(), (e) => e instanceof LexeconStorageError && e.code === "locked");
  // The same refusal through Lexecon.create keeps its code.
  await assert.rejects(Lexecon.create({ nodeId: "second", storage: fileStorage(path) }), (e) => {
    assert.ok(e instanceof LexeconStorageError, String(e));
    assert.equal(e.code, "locked");
    return true;
  });
  const ro = fileStorage(path, { readOnly: true });
  assert.equal((await ro.open()).records, 0, "a read-only handle needs no lock");
  await a.close();
  await b.open();
  await b.close();
  await ro.close();
});

test("every path to one file is one writer: a symlink, a dangling one, `..`", async () => {
  const dir = tmp();
  mkdirSync(join(dir, "sub"));
  const path = join(dir, "ledger.db");
  // Dangling until the first writer creates the file through the real path.
  symlinkSync(path, join(dir, "alias.db"));
  const a = fileStorage(join(dir, "alias.db"));
  await a.open();
  for (const other of [path, join(dir, "sub", "..", "ledger.db")]) {
    await assert.rejects(fileStorage(other).open(), (e) => {
      assert.ok(e instanceof LexeconStorageError, String(e));
      assert.equal(e.code, "locked");
      return true;
    });
  }
  // One lock file, at the file's own path.
  assert.ok(existsSync(`${path}.lock`));
  assert.ok(!existsSync(join(dir, "alias.db.lock")));
  await a.close();
  const b = fileStorage(path);
  await b.open();
  await assert.rejects(fileStorage(join(dir, "alias.db")).open(), (e) => e.code === "locked");
  await b.close();
});

test("fileStorage refuses options it does not know: a misspelt readOnly must not open for writing", async () => {
  const path = join(tmp(), "ledger.db");
  for (const make of [fileStorage, fileStorageSubpath]) {
    assert.throws(() => make(path, { readonly: true }), (e) => {
      assert.ok(e instanceof LexeconConfigError, String(e));
      assert.equal(e.message, "unknown option `readonly` for fileStorage (known: readOnly)");
      return true;
    });
    assert.throws(() => make(path, { readOnly: "yes" }), /readOnly must be a boolean, got string/);
  }
  assert.ok(!existsSync(path) && !existsSync(`${path}.lock`), "nothing was opened");
});

test("writers that open at the same moment: exactly one gets the ledger, in this process and across processes", async () => {
  const path = join(tmp(), "ledger.db");
  const [a, b] = [fileStorage(path), fileStorageSubpath(path)];
  const here = await Promise.allSettled([a.open(), b.open()]);
  assert.deepEqual(here.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
  assert.equal(/** @type {any} */ (here.find((r) => r.status === "rejected")).reason.code, "locked");
  await a.close();
  await b.close();

  const other = join(tmp(), "ledger.db");
  const script = fileURLToPath(new URL("./support/open-writer.js", import.meta.url));
  for (let round = 0; round < 5; round++) {
    const startAt = Date.now() + 600; // after every process has started
    const outcomes = await Promise.all(
      [0, 1, 2, 3].map(
        () =>
          new Promise((resolve, reject) =>
            execFile(process.execPath, [script, other, String(startAt)], { cwd: jsRoot }, (e, stdout) =>
              e ? reject(e) : resolve(stdout.trim()),
            ),
          ),
      ),
    );
    assert.deepEqual(outcomes.sort(), ["locked", "locked", "locked", "open"], `round ${round}`);
  }
});

test("a Lexecon.create that fails closes the fileStorage it opened, and only that one", async () => {
  const dir = tmp();
  const path = join(dir, "ledger.db");
  const bad = { ...guidePolicy(), relations: [{ type: "permits" }] };
  for (const storage of [fileStorage, fileStorageSubpath]) {
    // Passed inline, as the README shows: nothing else can close it.
    await assert.rejects(Lexecon.create({ nodeId: "n", policy: bad, storage: storage(path) }), (e) => e.code === "invalid_policy");
    const s = storage(path);
    const gov = await Lexecon.create({ nodeId: "n", policy: guidePolicy(), storage: s });
    assert.equal((await gov.decide(search)).allowed, true);
    await s.close();
  }
  // Opened by the caller before: the caller's to close.
  const mine = fileStorage(path);
  await mine.open();
  await assert.rejects(Lexecon.create({ nodeId: "n", policy: bad, storage: mine }), (e) => e.code === "invalid_policy");
  assert.equal(await mine.length(), 3);
  await mine.close();
});

test("both fileStorage exports: the path as given, resolved when made; closed before use stays closed", async () => {
  const dir = tmp();
  const before = process.cwd();
  process.chdir(dir);
  let lazy;
  let direct;
  try {
    lazy = fileStorage("rel.db");
    direct = fileStorageSubpath("rel2.db");
  } finally {
    process.chdir(before);
  }
  assert.equal(lazy.path, "rel.db");
  assert.equal(direct.path, "rel2.db");
  assert.equal(await lazy.length(), 0);
  assert.equal(await direct.length(), 0);
  assert.ok(existsSync(join(dir, "rel.db")) && existsSync(join(dir, "rel2.db")), "relative to the directory when made");
  await lazy.close();
  await direct.close();
  for (const make of [fileStorage, fileStorageSubpath]) {
    const s = make(join(dir, "never.db"));
    await s.close();
    await assert.rejects(s.length(), /was closed/);
  }
  assert.equal(existsSync(join(dir, "never.db")), false);
});

test("a torn last record is cut on open; every complete record is kept", async () => {
  const path = join(tmp(), "ledger.db");
  const { gov } = await writeLedger(path, 3);
  const size = statSync(path).size;
  // A crash in the middle of an append: a header and part of a payload.
  const torn = Buffer.alloc(48 + 10);
  torn.writeUInt32LE(500, 0);
  appendFileSync(path, torn);
  const storage = fileStorage(path);
  const recovery = await storage.open();
  assert.equal(recovery.truncatedBytes, 58);
  assert.equal(recovery.records, 4);
  assert.equal(statSync(path).size, size);
  const again = await Lexecon.create({ nodeId: "file-node", storage, signingKey: SEED });
  assert.deepEqual(again.head, gov.head);
  assert.equal((await again.decide(search)).ledger_index, 4);
  await storage.close();

  // A file cut inside a record header.
  const path2 = join(tmp(), "ledger.db");
  await writeLedger(path2, 1);
  const full = statSync(path2).size;
  appendFileSync(path2, Buffer.alloc(20));
  const s2 = fileStorage(path2);
  assert.equal((await s2.open()).truncatedBytes, 20);
  assert.equal(statSync(path2).size, full);
  await s2.close();
});

test("zeros where the next record should start are a torn tail; zeros from inside a record are one damaged entry, kept", async () => {
  // A crash after the file grew but before the append's data reached the
  // disk leaves zeros (XFS reads unwritten extents as zeros).
  const path = join(tmp(), "ledger.db");
  const { gov } = await writeLedger(path, 3);
  const clean = readFileSync(path);
  for (const zeros of [48, 49, 1300, 3 << 20]) {
    writeFileSync(path, Buffer.concat([clean, Buffer.alloc(zeros)]));
    const storage = fileStorage(path);
    assert.deepEqual(await storage.open(), { records: 4, truncatedBytes: zeros, ignoredTailBytes: 0, problems: [] }, `${zeros} zeros`);
    assert.equal(statSync(path).size, clean.length);
    const again = await Lexecon.create({ nodeId: "file-node", storage, signingKey: SEED });
    assert.deepEqual(again.head, gov.head);
    await storage.close();
    writeFileSync(path, clean);
  }

  // Zeros from 20 bytes into record 2 to the end: damage, as the Rust host
  // reads it (one damaged entry, the bytes kept), never a torn tail.
  const third = 8 + 48 + clean.readUInt32LE(8);
  const record2 = third + 48 + clean.readUInt32LE(third);
  const damaged = Buffer.concat([clean, Buffer.alloc(1000)]);
  damaged.fill(0, record2 + 20);
  writeFileSync(path, damaged);
  const storage = fileStorage(path);
  const recovery = await storage.open();
  assert.equal(recovery.records, 3);
  assert.equal(recovery.truncatedBytes, 0);
  assert.equal(recovery.problems.length, 1);
  assert.equal(recovery.problems[0].index, 2);
  assert.match(recovery.problems[0].detail, /no intact record follows, so bytes \d+\.\.\d+ are kept as this one damaged entry/);
  assert.equal(statSync(path).size, damaged.length, "damaged bytes are kept");
  await storage.close();
});

test("a damaged record keeps its place: length counts it, reading it fails, nothing is truncated", async () => {
  const path = join(tmp(), "ledger.db");
  await writeLedger(path, 3);
  const file = readFileSync(path);
  const second = 8 + 48 + file.readUInt32LE(8); // record 1
  file[second + 48 + 20] ^= 0x01; // flip a payload bit
  writeFileSync(path, file);
  const storage = fileStorage(path);
  const recovery = await storage.open();
  assert.equal(recovery.records, 4);
  assert.equal(recovery.truncatedBytes, 0);
  assert.equal(recovery.problems.length, 1);
  assert.equal(recovery.problems[0].index, 1);
  assert.match(recovery.problems[0].detail, /fails its checksum/);
  assert.equal(statSync(path).size, file.length, "damage is never cut");
  assert.equal(await storage.length(), 4);
  assert.ok(await storage.get(0));
  await assert.rejects(storage.get(1), (e) => e instanceof LexeconStorageError && e.index === 1);
  assert.ok(await storage.get(2), "records after the damage are still read");
  await assert.rejects(Lexecon.create({ nodeId: "file-node", storage }), (e) => {
    assert.ok(e instanceof LexeconStorageError, String(e));
    assert.match(e.message, /corrupt at entry 1/);
    assert.equal(e.index, 1, "the damaged record's index survives Lexecon.create");
    return true;
  });
  await storage.close();
});

test("a damaged length field costs one entry, not the rest of the log", async () => {
  const path = join(tmp(), "ledger.db");
  await writeLedger(path, 3);
  const file = readFileSync(path);
  const second = 8 + 48 + file.readUInt32LE(8);
  file.writeUInt32LE(file.readUInt32LE(second) + 3, second);
  writeFileSync(path, file);
  const storage = fileStorage(path, { readOnly: true });
  const recovery = await storage.open();
  assert.equal(recovery.records, 4);
  assert.deepEqual(
    recovery.problems.map((p) => p.index),
    [1],
  );
  assert.ok(await storage.get(2));
  assert.ok(await storage.get(3));
  await storage.close();
});

test("files that are not ledgers are refused; so is one cut below its header or emptied; a new file is created whole", async () => {
  const dir = tmp();
  writeFileSync(join(dir, "x.db"), "hello world, not a ledger");
  await assert.rejects(fileStorage(join(dir, "x.db")).open(), (e) => e.code === "not_a_ledger");
  await assert.rejects(Lexecon.create({ nodeId: "x", storage: fileStorage(join(dir, "x.db")) }), (e) => e.code === "not_a_ledger");
  // A file is created whole, so a shorter one (even empty) lost its
  // entries: never started over as a new chain, as in the Rust host.
  for (const text of ["", "LXLE", "LXLEDG0"]) {
    writeFileSync(join(dir, "y.db"), text);
    for (const options of [{}, { readOnly: true }]) {
      await assert.rejects(fileStorage(join(dir, "y.db"), options).open(), (e) => {
        assert.equal(e.code, "not_a_ledger");
        assert.match(e.message, new RegExp(`holds ${text.length} bytes, less than its 8-byte header: it was cut or emptied`));
        return true;
      });
    }
    assert.equal(readFileSync(join(dir, "y.db")).toString(), text, "left as it was");
  }
  const s = fileStorage(join(dir, "new.db"));
  assert.deepEqual(await s.open(), { records: 0, truncatedBytes: 0, ignoredTailBytes: 0, problems: [] });
  assert.equal(readFileSync(join(dir, "new.db")).toString(), "LXLEDG01");
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes(".new-")), [], "no temporary file is left");
  await s.close();
  await assert.rejects(fileStorage(join(dir, "missing", "z.db")).open(), /does not exist/);
});

// ---------------------------------------------------------------------------
// Interchange with the Rust host (runs when a `lexecon` binary exists)
// ---------------------------------------------------------------------------

function findLexecon() {
  const candidates = [
    process.env.LEXECON_BIN,
    join(repoRoot, "target/release/lexecon"),
    join(repoRoot, "target/debug/lexecon"),
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, "debug/lexecon"),
  ].filter(Boolean);
  return candidates.find((p) => existsSync(p));
}

const lexecon = findLexecon();

test("the Rust host's `lexecon ledger verify` accepts a ledger written by the npm package, and vice versa", {
  skip: lexecon ? false : "no lexecon binary (set LEXECON_BIN or build the host)",
}, async () => {
  const home = tmp();
  const env = { ...process.env, LEXECON_HOME: home, NO_COLOR: "1" };
  const run = (...args) => execFileSync(lexecon, ["--node-id", "n1", ...args], { env, encoding: "utf8" });
  run("init");
  const ledgerPath = join(home, "nodes", "n1", "ledger.db");
  assert.ok(existsSync(ledgerPath), `expected the node's ledger at ${ledgerPath}`);

  // JS writes, Rust verifies.
  const storage = fileStorage(ledgerPath);
  const gov = await Lexecon.create({ nodeId: "n1", policy: guidePolicy(), storage });
  await gov.decideBatch([search, execute, search]);
  await storage.close();
  const verified = run("ledger", "verify");
  assert.match(verified, /ledger valid: 4 entries/, verified);

  // Rust appends, JS replays and verifies.
  run("decide", "--actor", "model", "--tool", "web_search", "--action", "Execute web_search", "--intent", "Research", "--risk", "1");
  const s2 = fileStorage(ledgerPath);
  const reopened = await Lexecon.create({ nodeId: "n1", storage: s2 });
  assert.equal(reopened.head.length, 5);
  const report = await reopened.verifyLedger();
  assert.equal(report.valid, true);
  await reopened.decide(search);
  await s2.close();
  assert.match(run("ledger", "verify"), /ledger valid: 6 entries/);
});
