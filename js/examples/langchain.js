// Lexecon with LangChain.js tools: `tool(func, { name, description, schema })`
// from "@langchain/core/tools" makes a tool whose `invoke(input, config)`
// calls `func(input, config)`.
//
// This example does not depend on LangChain (no network at test time):
// `tool` below reproduces that shape, and the loop plays an agent executor
// with a scripted model. With the real package, import `tool` from
// "@langchain/core/tools" and hand the tools to your agent unchanged.
import { Lexecon, LexeconDeniedError, governed, memoryStorage } from "lexecon";
import { policy } from "./policy.js";
import { nextToolCalls } from "./scripted-model.js";

/** `import { tool } from "@langchain/core/tools"`, reduced to its shape. */
const tool = (func, fields) => ({ ...fields, invoke: (input, config = {}) => func(input, config) });

const gov = await Lexecon.create({ nodeId: "langchain-agent", policy, storage: memoryStorage() });

const tools = [
  tool(
    governed("web_search", async ({ query }) => `top result for ${query}`, { gov, riskLevel: 1 }),
    { name: "web_search", description: "Search the public web", schema: { type: "object", properties: { query: { type: "string" } } } },
  ),
  tool(
    governed("shell", async ({ command }) => `ran ${command}`, { gov, riskLevel: 5 }),
    { name: "shell", description: "Run a shell command", schema: { type: "object", properties: { command: { type: "string" } } } },
  ),
  tool(
    // The user approved reading the wiki in this session: the condition holds.
    governed("read_wiki", async ({ page }, { capabilityToken }) => `contents of ${page} (token ${capabilityToken.slice(0, 12)}…)`, {
      gov,
      riskLevel: 2,
      context: { user_approved: true },
    }),
    { name: "read_wiki", description: "Read an internal wiki page", schema: { type: "object", properties: { page: { type: "string" } } } },
  ),
];
const byName = new Map(tools.map((t) => [t.name, t]));

for (let step = 0; step < 10; step++) {
  const calls = nextToolCalls();
  if (calls.length === 0) break;
  for (const { toolCallId, toolName, args } of calls) {
    try {
      const output = await byName.get(toolName).invoke(args, { runName: toolName, metadata: { toolCallId } });
      console.log(`${toolName}: allowed -> ${output}`);
    } catch (e) {
      if (!(e instanceof LexeconDeniedError)) throw e;
      // An executor with handleToolError returns this text to the model.
      console.log(`${toolName}: ${e.verdict} -> ${e.reason}`);
    }
  }
}
const report = await gov.verifyLedger();
console.log(`ledger: ${report.entries} entries, ${report.valid ? "valid" : "INVALID"}`);
