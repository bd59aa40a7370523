// Shared by the tests (not a test file itself).
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
export const jsRoot = fileURLToPath(new URL("../", import.meta.url));

/** The guide's AI Assistant policy, as the vectors use it. */
export function guidePolicy() {
  const v = JSON.parse(readFileSync(`${repoRoot}tests/vectors/guide_test_governance.json`, "utf8"));
  return v.steps[0].load_policy;
}

export function vectorFiles() {
  const dir = `${repoRoot}tests/vectors/`;
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => ({ name: f, path: dir + f }));
}

export const search = Object.freeze({
  actor: "model",
  proposed_action: "Execute web_search",
  tool: "web_search",
  user_intent: "Research",
  risk_level: 1,
});

export const execute = Object.freeze({
  actor: "model",
  proposed_action: "Execute system_command",
  tool: "execute",
  user_intent: "Run command",
  risk_level: 5,
});

export const SEED = "07".repeat(32);
