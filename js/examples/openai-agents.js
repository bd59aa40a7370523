// Lexecon with the OpenAI Agents SDK (`@openai/agents`): function tools made
// with `tool({ name, description, parameters, execute })` whose `execute` is
// governed, run by the SDK's own `run(agent, input)` loop. The agent's model
// is a scripted implementation of the SDK's `Model` interface playing the
// scripted tool calls, so this runs without a network or an API key; with a
// real model, drop `model` from the Agent and keep the tools.
import { Agent, Usage, run, setTracingDisabled, tool } from "@openai/agents";
import { Lexecon, LexeconDeniedError, governed, memoryStorage } from "lexecon";
import { policy } from "./policy.js";
import { nextToolCalls } from "./scripted-model.js";

setTracingDisabled(true); // tracing would export to OpenAI's servers

const gov = await Lexecon.create({ nodeId: "openai-agent", policy, storage: memoryStorage() });

// A refused call throws LexeconDeniedError; the SDK hands what this returns
// to the model as the tool's output.
const outcomes = [];
const refusal = (_runContext, error) => {
  if (!(error instanceof LexeconDeniedError)) throw error;
  outcomes.push(`${error.tool}: ${error.verdict} -> ${error.reason}`);
  return error.message;
};
const allowed = (name, output) => {
  outcomes.push(`${name}: allowed -> ${output}`);
  return output;
};

const tools = [
  tool({
    name: "web_search",
    description: "Search the public web",
    parameters: { type: "object", properties: { query: { type: "string" } }, required: ["query"], additionalProperties: false },
    strict: true,
    execute: governed("web_search", async ({ query }) => allowed("web_search", `found 3 pages about ${query}`), { gov }),
    errorFunction: refusal,
  }),
  tool({
    name: "shell",
    description: "Run a shell command",
    parameters: { type: "object", properties: { command: { type: "string" } }, required: ["command"], additionalProperties: false },
    strict: true,
    execute: governed("shell", async ({ command }) => allowed("shell", `ran ${command}`), { gov, riskLevel: 5 }),
    errorFunction: refusal,
  }),
  tool({
    name: "read_wiki",
    description: "Read an internal wiki page",
    parameters: { type: "object", properties: { page: { type: "string" } }, required: ["page"], additionalProperties: false },
    strict: true,
    // Risk 4: the policy asks for a person's confirmation (escalate).
    execute: governed("read_wiki", async ({ page }) => allowed("read_wiki", `contents of ${page}`), {
      gov,
      riskLevel: 4,
      context: { user_approved: true },
    }),
    errorFunction: refusal,
  }),
];

/** The SDK's Model interface, answering each turn from the script. */
const scriptedModel = {
  async getResponse() {
    const calls = nextToolCalls();
    const output =
      calls.length === 0
        ? [{ type: "message", role: "assistant", status: "completed", content: [{ type: "output_text", text: "done" }] }]
        : calls.map(({ toolCallId, toolName, args }) => ({
            type: "function_call",
            callId: toolCallId,
            name: toolName,
            arguments: JSON.stringify(args),
            status: "completed",
          }));
    return { usage: new Usage(), output };
  },
  async *getStreamedResponse() {
    throw new Error("this example does not stream");
  },
};

const agent = new Agent({ name: "ops", instructions: "Use the tools.", model: scriptedModel, tools });
const result = await run(agent, "Research the WebAssembly component model, then tidy up the server.", {
  context: { userId: "u-42" },
});
for (const line of outcomes) console.log(line);
console.log(`model: ${result.finalOutput}`);
const report = await gov.verifyLedger();
console.log(`ledger: ${report.entries} entries, ${report.valid ? "valid" : "INVALID"}`);
