// `governed` inside each agent framework's typed tool constructor, as a user
// of TypeScript writes it: the wrapped function must fit where each SDK
// expects `execute` (AI SDK, OpenAI Agents) or the tool function (LangChain).
import { jsonSchema, tool as aiTool } from "ai";
import { tool as langchainTool } from "@langchain/core/tools";
import { tool as agentsTool } from "@openai/agents";
import { z } from "zod";
import { Lexecon, governed, memoryStorage } from "lexecon";

const gov = await Lexecon.create({ nodeId: "types", storage: memoryStorage() });

type Query = { query: string };
const search = governed("web_search", async ({ query }: Query, { capabilityToken }) => `${query} ${capabilityToken}`, {
  gov,
  riskLevel: ({ query }) => (query.includes("internal") ? 3 : 1),
});

export const aiSdk = aiTool({
  description: "Search the public web",
  inputSchema: jsonSchema<Query>({ type: "object", properties: { query: { type: "string" } }, required: ["query"] }),
  execute: search,
});

export const langchain = langchainTool(search, {
  name: "web_search",
  description: "Search the public web",
  schema: z.object({ query: z.string() }),
});

export const openaiAgents = agentsTool({
  name: "web_search",
  description: "Search the public web",
  parameters: z.object({ query: z.string() }),
  execute: search,
});
