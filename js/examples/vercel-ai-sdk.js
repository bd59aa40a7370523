// Lexecon with the Vercel AI SDK's tool shape: `tool({ description,
// inputSchema, execute })`, where `execute(input, { toolCallId, messages,
// abortSignal })` runs when the model calls the tool.
//
// This example does not depend on the `ai` package (no network at test
// time): `tool` below reproduces `import { tool } from "ai"`, which returns
// its argument, and the loop at the end plays `generateText({ model, tools,
// stopWhen })` with a scripted model. With the real SDK, keep the `tools`
// object as it is and pass it to `generateText`/`streamText`.
import { Lexecon, LexeconDeniedError, governed, memoryStorage } from "lexecon";
import { policy } from "./policy.js";
import { nextToolCalls } from "./scripted-model.js";

const tool = (definition) => definition; // `import { tool } from "ai"`

const gov = await Lexecon.create({ nodeId: "ai-sdk-agent", policy, storage: memoryStorage() });

const tools = {
  web_search: tool({
    description: "Search the public web",
    inputSchema: { type: "object", properties: { query: { type: "string" } }, required: ["query"] },
    execute: governed("web_search", async ({ query }, { capabilityToken }) => {
      // A real tool would send the token to its backend, which verifies it.
      return { results: [`https://example.org/search?q=${encodeURIComponent(query)}`], token: capabilityToken.slice(0, 12) };
    }, { gov, riskLevel: 1, userIntent: ({ query }) => `Research ${query}` }),
  }),
  shell: tool({
    description: "Run a shell command",
    inputSchema: { type: "object", properties: { command: { type: "string" } }, required: ["command"] },
    execute: governed("shell", async ({ command }) => `ran ${command}`, { gov, riskLevel: 5 }),
  }),
  read_wiki: tool({
    description: "Read an internal wiki page",
    inputSchema: { type: "object", properties: { page: { type: "string" } }, required: ["page"] },
    execute: governed("read_wiki", async ({ page }) => `contents of ${page}`, {
      gov,
      riskLevel: 2,
      context: { user_approved: false },
    }),
  }),
};

// What generateText does with tool calls, in brief.
for (let step = 0; step < 10; step++) {
  const calls = nextToolCalls();
  if (calls.length === 0) break;
  for (const { toolCallId, toolName, args } of calls) {
    try {
      const output = await tools[toolName].execute(args, { toolCallId, messages: [] });
      console.log(`${toolName}: allowed -> ${JSON.stringify(output)}`);
    } catch (e) {
      if (!(e instanceof LexeconDeniedError)) throw e;
      // The SDK turns a throwing tool into a tool-error part the model sees.
      console.log(`${toolName}: ${e.verdict} -> ${e.reason}`);
    }
  }
}
const report = await gov.verifyLedger();
console.log(`ledger: ${report.entries} entries, ${report.valid ? "valid" : "INVALID"}`);
