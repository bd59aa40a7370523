// Compiled by `tsc --noEmit` only (npm run typecheck): the README's usage,
// typed. Imports resolve through the package's `exports` map.
import {
  Lexecon,
  LexeconClient,
  LexeconDeniedError,
  LexeconError,
  LexeconPolicyError,
  governed,
  memoryStorage,
  fileStorage,
  verifyToken,
  type Decision,
  type DecisionRequest,
  type StorageAdapter,
} from "lexecon";
import { init } from "lexecon/init";
import { fileStorage as fileStorage2, type FileRecovery } from "lexecon/file";

const policy = { name: "p", mode: "permissive", relations: [] };

export async function main(): Promise<void> {
  const gov = await Lexecon.create({ nodeId: "app-1", policy, storage: memoryStorage() });
  const request: DecisionRequest = {
    actor: "model",
    proposed_action: "Execute web_search",
    tool: "web_search",
    user_intent: "Research",
    risk_level: 1,
  };
  const d: Decision = await gov.decide(request);
  const allowed: boolean = d.allowed;
  const reason: string = d.reason;
  const token: string | undefined = d.capability_token?.token;
  const hash: string = d.ledger_entry_hash;
  void [allowed, reason, token, hash];

  const batch = await gov.decideBatch([request, request]);
  for (const item of batch) {
    if ("error" in item) console.log(item.error.field);
    else console.log(item.decision);
  }
  if (token) {
    const v = await gov.verifyToken(token, { tool: "web_search" });
    if (v.valid) console.log(v.claims?.expires_at);
    else console.log(v.error);
    console.log(verifyToken(token, { publicKey: gov.publicKey, tool: "web_search" }).valid);
  }
  const report = await gov.verifyLedger();
  if (!report.valid) console.log(report.firstInvalid, report.failure?.kind);
  const signed = await gov.verifyLedger({ signatures: true });
  if (signed.failure?.kind === "bad_signature") console.log(signed.failure.message);
  const loaded = await gov.loadPolicy(policy);
  console.log(loaded.policy_hash, loaded.recorded, gov.publicKey);

  // An async adapter (edge KV, a database).
  const kv = new Map<number, string>();
  const adapter: StorageAdapter = {
    async append(bytes, meta) {
      kv.set(meta.index, new TextDecoder().decode(bytes));
      return meta.index;
    },
    async get(index) {
      return kv.get(index) ?? null;
    },
    async length() {
      return kv.size;
    },
  };
  await Lexecon.create({ nodeId: "edge", storage: adapter, signingKey: new Uint8Array(32) });

  const file = fileStorage("/tmp/ledger.lxl");
  const recovery: FileRecovery = await fileStorage2("/tmp/other.lxl").open();
  console.log(recovery.truncatedBytes, file.path);

  const client = new LexeconClient({ baseUrl: "http://localhost:8080", apiKey: "k", timeoutMs: 2000 });
  const search = governed(
    "web_search",
    async (args: { query: string }, { capabilityToken }) => `${args.query} ${capabilityToken}`,
    { client, riskLevel: 1, actor: "model", userIntent: (args) => `search ${args.query}` },
  );
  try {
    const out: string = await search({ query: "wasm" });
    console.log(out);
  } catch (e) {
    if (e instanceof LexeconDeniedError) console.log(e.reason, e.decision.decision);
    else if (e instanceof LexeconPolicyError) console.log(e.path, e.line, e.column);
    else if (e instanceof LexeconError) console.log(e.code, e.status);
  }
  await init(new Uint8Array(0));
}
