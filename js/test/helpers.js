// Shared by the tests (not a test file itself).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
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

const npm = process.platform === "win32" ? "npm.cmd" : "npm";
export const quiet = { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, npm_config_update_notifier: "false" } };

/**
 * The package as a user gets it: `npm pack` into a fresh directory, then the
 * tarball installed (offline: it has no dependencies) into a new ES module
 * project there. Returns the directory, the project and the packed files.
 */
export function packAndInstall() {
  const dir = mkdtempSync(join(tmpdir(), "lexecon-pack-"));
  const packed = JSON.parse(execFileSync(npm, ["pack", "--json", "--pack-destination", dir], { ...quiet, cwd: jsRoot }));
  const project = join(dir, "app");
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  execFileSync(npm, ["install", "--offline", "--no-audit", "--no-fund", join(dir, packed[0].filename)], { ...quiet, cwd: project });
  return { dir, project, files: packed[0].files.map((f) => f.path).sort() };
}
