// The runnable examples (the real agent SDKs, a scripted model, no network)
// do what they say.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { jsRoot } from "./helpers.js";

const run = (file) => execFileSync(process.execPath, [`examples/${file}`], { cwd: jsRoot, encoding: "utf8" });

test("Vercel AI SDK: generateText runs governed tools", () => {
  const out = run("vercel-ai-sdk.js");
  assert.match(out, /^web_search: allowed -> /m);
  assert.match(out, /^shell: deny -> forbidden/m);
  assert.match(out, /^read_wiki: deny -> /m, "user_approved is false in this example");
  assert.match(out, /^model: done$/m, "the loop ran to the model's final answer");
  assert.match(out, /^ledger: 4 entries, valid$/m);
});

test("LangChain.js: tool(func, fields) invoked with the model's tool calls", () => {
  const out = run("langchain.js");
  assert.match(out, /^web_search: allowed -> top result/m);
  assert.match(out, /^shell: deny -> /m);
  assert.match(out, /^read_wiki: allowed -> contents of onboarding \(token lxc2\./m);
  assert.match(out, /^model: done$/m, "the loop ran to the model's final answer");
  assert.match(out, /^ledger: 4 entries, valid$/m);
});

test("OpenAI Agents SDK: run(agent) calls governed function tools", () => {
  const out = run("openai-agents.js");
  assert.match(out, /^web_search: allowed -> /m);
  assert.match(out, /^shell: deny -> /m);
  assert.match(out, /^read_wiki: escalate -> human confirmation required/m);
  assert.match(out, /^model: done$/m, "the loop ran to the model's final answer");
  assert.match(out, /^ledger: 4 entries, valid$/m);
});
