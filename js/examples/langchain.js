// Lexecon with LangChain.js (`@langchain/core`): `tool(func, { name,
// description, schema })` whose `func` is governed, called the way a
// tool-calling agent calls it — the model's `tool_calls` go to
// `tool.invoke(toolCall)`, which answers with a ToolMessage. The model is a
// scripted BaseChatModel (LangChain's way to write a custom chat model)
// playing the scripted tool calls, so this runs without a network or an API
// key; with a real model (`new ChatOpenAI(...)`, ...) keep the tools.
import { BaseChatModel } from "@langchain/core/language_models/chat_models";
import { AIMessage, HumanMessage, ToolMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { Lexecon, LexeconDeniedError, governed, memoryStorage } from "lexecon";
import { policy } from "./policy.js";
import { nextToolCalls } from "./scripted-model.js";

const gov = await Lexecon.create({ nodeId: "langchain-agent", policy, storage: memoryStorage() });

const tools = [
  tool(governed("web_search", async ({ query }) => `top result for ${query}`, { gov, riskLevel: 1 }), {
    name: "web_search",
    description: "Search the public web",
    schema: { type: "object", properties: { query: { type: "string" } }, required: ["query"] },
  }),
  tool(governed("shell", async ({ command }) => `ran ${command}`, { gov, riskLevel: 5 }), {
    name: "shell",
    description: "Run a shell command",
    schema: { type: "object", properties: { command: { type: "string" } }, required: ["command"] },
  }),
  tool(
    // The user approved reading the wiki in this session: the condition holds.
    governed("read_wiki", async ({ page }, { capabilityToken }) => `contents of ${page} (token ${capabilityToken.slice(0, 12)}…)`, {
      gov,
      riskLevel: 2,
      context: { user_approved: true },
    }),
    {
      name: "read_wiki",
      description: "Read an internal wiki page",
      schema: { type: "object", properties: { page: { type: "string" } }, required: ["page"] },
    },
  ),
];
const byName = new Map(tools.map((t) => [t.name, t]));

/** A chat model that answers each turn with the script's next tool call. */
class ScriptedChatModel extends BaseChatModel {
  _llmType() {
    return "scripted";
  }
  bindTools() {
    return this;
  }
  async _generate() {
    const calls = nextToolCalls();
    const message = new AIMessage({
      content: calls.length === 0 ? "done" : "",
      tool_calls: calls.map(({ toolCallId, toolName, args }) => ({ id: toolCallId, name: toolName, args, type: "tool_call" })),
    });
    return { generations: [{ text: "", message }] };
  }
}

const model = new ScriptedChatModel({}).bindTools(tools);
const messages = [new HumanMessage("Research the WebAssembly component model, then tidy up the server.")];
for (let step = 0; step < 10; step++) {
  const reply = await model.invoke(messages);
  messages.push(reply);
  if (!reply.tool_calls?.length) break;
  for (const call of reply.tool_calls) {
    try {
      const result = await byName.get(call.name).invoke(call);
      console.log(`${call.name}: allowed -> ${result.content}`);
      messages.push(result);
    } catch (e) {
      if (!(e instanceof LexeconDeniedError)) throw e;
      // What a ToolNode with handleToolErrors sends back to the model.
      console.log(`${call.name}: ${e.verdict} -> ${e.reason}`);
      messages.push(new ToolMessage({ content: e.message, tool_call_id: call.id, status: "error" }));
    }
  }
}
console.log(`model: ${messages.at(-1).content}`);
const report = await gov.verifyLedger();
console.log(`ledger: ${report.entries} entries, ${report.valid ? "valid" : "INVALID"}`);
