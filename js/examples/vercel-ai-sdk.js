// Lexecon with the Vercel AI SDK (`ai`): `tool({ description, inputSchema,
// execute })` whose `execute` is governed, run by the SDK's own
// `generateText` loop. The model is the SDK's `MockLanguageModelV4` (from
// "ai/test") playing the scripted tool calls, so this runs without a network
// or an API key; with a real model, pass it as `model` and keep the tools.
import { generateText, jsonSchema, stepCountIs, tool } from "ai";
import { MockLanguageModelV4 } from "ai/test";
import { Lexecon, governed, memoryStorage } from "lexecon";
import { policy } from "./policy.js";
import { nextToolCalls } from "./scripted-model.js";

const gov = await Lexecon.create({ nodeId: "ai-sdk-agent", policy, storage: memoryStorage() });

const tools = {
  web_search: tool({
    description: "Search the public web",
    inputSchema: jsonSchema({ type: "object", properties: { query: { type: "string" } }, required: ["query"] }),
    execute: governed("web_search", async ({ query }, { capabilityToken }) => {
      // A real tool would send the token to its backend, which verifies it.
      return { results: [`https://example.org/search?q=${encodeURIComponent(query)}`], token: capabilityToken.slice(0, 12) };
    }, { gov, riskLevel: 1, userIntent: ({ query }) => `Research ${query}` }),
  }),
  shell: tool({
    description: "Run a shell command",
    inputSchema: jsonSchema({ type: "object", properties: { command: { type: "string" } }, required: ["command"] }),
    execute: governed("shell", async ({ command }) => `ran ${command}`, { gov, riskLevel: 5 }),
  }),
  read_wiki: tool({
    description: "Read an internal wiki page",
    inputSchema: jsonSchema({ type: "object", properties: { page: { type: "string" } }, required: ["page"] }),
    execute: governed("read_wiki", async ({ page }) => `contents of ${page}`, {
      gov,
      riskLevel: 2,
      context: { user_approved: false },
    }),
  }),
};

const usage = { inputTokens: { total: 1, noCache: 1, cacheRead: 0, cacheWrite: 0 }, outputTokens: { total: 1, text: 1, reasoning: 0 } };
/** One scripted model turn: the next tool call, or a final answer. */
function scriptedTurn() {
  const calls = nextToolCalls();
  if (calls.length === 0) {
    return { content: [{ type: "text", text: "done" }], finishReason: { unified: "stop", raw: "stop" }, usage, warnings: [] };
  }
  return {
    content: calls.map(({ toolCallId, toolName, args }) => ({ type: "tool-call", toolCallId, toolName, input: JSON.stringify(args) })),
    finishReason: { unified: "tool-calls", raw: "tool_calls" },
    usage,
    warnings: [],
  };
}

const result = await generateText({
  model: new MockLanguageModelV4({ doGenerate: async () => scriptedTurn() }),
  tools,
  stopWhen: stepCountIs(10),
  prompt: "Research the WebAssembly component model, then tidy up the server.",
});

// A governed tool that is refused throws LexeconDeniedError; the SDK turns
// it into a tool-error part, which the model sees and can answer to.
for (const step of result.steps) {
  for (const part of step.content) {
    if (part.type === "tool-result") console.log(`${part.toolName}: allowed -> ${JSON.stringify(part.output)}`);
    if (part.type === "tool-error") console.log(`${part.toolName}: ${part.error.verdict} -> ${part.error.reason}`);
  }
}
console.log(`model: ${result.text}`);
const report = await gov.verifyLedger();
console.log(`ledger: ${report.entries} entries, ${report.valid ? "valid" : "INVALID"}`);
