// The shared tests/vectors/*.json through the package: every decision and
// every ledger entry must equal what the native Rust core produced
// (`expected`), byte for byte.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Lexecon, memoryStorage } from "lexecon";
import { vectorFiles } from "./helpers.js";

const decoder = new TextDecoder();

/** An async adapter over memoryStorage: results must not depend on the adapter. */
function asyncStorage() {
  const inner = memoryStorage();
  const later = (v) => new Promise((r) => setTimeout(() => r(v), 0));
  return {
    append: (b, m) => later(inner.append(b, m)),
    get: (i) => later(inner.get(i)),
    length: () => later(inner.length()),
  };
}

/**
 * Runs a vector the way lexecon_core::conformance::Vector::run does.
 * @param {any} v
 * @param {any} storage
 */
export async function runVector(v, storage) {
  const gov = await Lexecon.create({
    nodeId: v.node.node_id,
    defaultTokenTtl: v.node.default_token_ttl,
    maxTokenTtl: v.node.max_token_ttl,
    signingKey: v.signing_seed,
    deterministic: { clock: v.clock, random_seed: v.random_seed },
    storage,
  });
  const steps = [];
  for (const step of v.steps) {
    if (step.load_policy !== undefined) {
      try {
        steps.push({ policy: await gov.loadPolicy(JSON.stringify(step.load_policy, null, 2)) });
      } catch (e) {
        steps.push({ error: { code: e.code, message: e.message } });
      }
    }
    const batch = step.decide !== undefined ? [step.decide] : step.decide_batch;
    if (batch !== undefined) {
      try {
        steps.push(await gov.decideBatch(batch));
      } catch (e) {
        steps.push({ error: { code: e.code, message: e.message } });
      }
    }
  }
  const ledger = [];
  const length = Number(await storage.length());
  for (let i = 0; i < length; i++) ledger.push(decoder.decode(await storage.get(i)));
  return { gov, steps, ledger, head_hash: gov.head.hash };
}

for (const { name, path } of vectorFiles()) {
  test(`vector ${name} reproduces the Rust core's outcome`, async () => {
    const v = JSON.parse(readFileSync(path, "utf8"));
    assert.ok(v.expected, `${name} has no expected block`);
    for (const [label, storage] of [
      ["memoryStorage", memoryStorage()],
      ["async adapter", asyncStorage()],
    ]) {
      const out = await runVector(v, storage);
      assert.equal(out.ledger.length, v.expected.ledger.length, `${label}: ledger length`);
      out.ledger.forEach((entry, i) => assert.equal(entry, v.expected.ledger[i], `${label}: ledger entry ${i}`));
      assert.deepStrictEqual(out.steps, v.expected.steps, `${label}: decisions`);
      assert.equal(out.head_hash, v.expected.head_hash, `${label}: head hash`);
      const report = await out.gov.verifyLedger();
      assert.equal(report.valid, true);
      assert.equal(report.entries, v.expected.ledger.length);
    }
  });
}
