// Lexecon with the OpenAI Agents SDK's function tools: `tool({ name,
// description, parameters, execute })` from "@openai/agents" makes a
// FunctionTool; the runner calls `invoke(runContext, inputJson)`, which
// parses the model's JSON arguments and calls `execute(input, runContext)`.
//
// This example does not depend on "@openai/agents" (no network at test
// time): `tool` below reproduces the FunctionTool shape and the loop plays
// `run(agent, input)` with a scripted model. With the real SDK, import
// `tool` from "@openai/agents" and give the tools to `new Agent({ tools })`.
import { Lexecon, LexeconDeniedError, governed, memoryStorage } from "lexecon";
import { policy } from "./policy.js";
import { nextToolCalls } from "./scripted-model.js";

/** `import { tool } from "@openai/agents"`, reduced to its shape. */
const tool = ({ name, description, parameters, execute }) => ({
  type: "function",
  name,
  description,
  parameters,
  invoke: (runContext, input) => execute(JSON.parse(input), runContext),
});

const gov = await Lexecon.create({ nodeId: "openai-agent", policy, storage: memoryStorage() });

const tools = [
  tool({
    name: "web_search",
    description: "Search the public web",
    parameters: { type: "object", properties: { query: { type: "string" } }, required: ["query"], additionalProperties: false },
    execute: governed("web_search", async ({ query }) => `found 3 pages about ${query}`, { gov }),
  }),
  tool({
    name: "shell",
    description: "Run a shell command",
    parameters: { type: "object", properties: { command: { type: "string" } }, required: ["command"], additionalProperties: false },
    execute: governed("shell", async ({ command }) => `ran ${command}`, { gov, riskLevel: 5 }),
  }),
  tool({
    name: "read_wiki",
    description: "Read an internal wiki page",
    parameters: { type: "object", properties: { page: { type: "string" } }, required: ["page"], additionalProperties: false },
    // Risk 4: the policy asks for a person's confirmation (escalate).
    execute: governed("read_wiki", async ({ page }) => `contents of ${page}`, { gov, riskLevel: 4, context: { user_approved: true } }),
  }),
];
const byName = new Map(tools.map((t) => [t.name, t]));
const runContext = { context: { userId: "u-42" } };

for (let turn = 0; turn < 10; turn++) {
  const calls = nextToolCalls();
  if (calls.length === 0) break;
  for (const { toolName, args } of calls) {
    try {
      const output = await byName.get(toolName).invoke(runContext, JSON.stringify(args));
      console.log(`${toolName}: allowed -> ${output}`);
    } catch (e) {
      if (!(e instanceof LexeconDeniedError)) throw e;
      // The SDK's default tool error handler sends this message to the model.
      console.log(`${toolName}: ${e.verdict} -> ${e.reason}`);
    }
  }
}
const report = await gov.verifyLedger();
console.log(`ledger: ${report.entries} entries, ${report.valid ? "valid" : "INVALID"}`);
