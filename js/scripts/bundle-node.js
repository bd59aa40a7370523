// Builds lib/: what Node loads for `lexecon`, `lexecon/init`, `lexecon/file`
// and `lexecon/client` (the `node` conditions in package.json).
//
// src/ is ten small ES modules. Node resolves, reads, compiles and links each
// one, and that was about a fifth of `import "lexecon"` (some 2.5 ms of 12;
// js/README.md, "Figures"). esbuild joins them: each entry point
// becomes one file, and the code entry points share goes to shared chunks, so
// in one process every entry point sees the same module instances (one
// engine, one `LexeconError` class for `instanceof`). The file ledger stays a
// separate file that `fileStorage` loads on first use, as in src/.
//
// Every file costs its own resolve, read and compile (~0.3 ms each), so
// there are as few as sharing allows: esbuild makes one chunk per set of
// entry points that share code, and `lexecon/client` is therefore not an
// entry of its own (that added two chunks to `import "lexecon"`) but a
// re-export of `LexeconClient` from lib/entry/init.js, which holds it and
// instantiates nothing. `import "lexecon"` reads three files: the entry, the
// code it shares with `lexecon/init`, and the code all three share.
//
// lib/ keeps src/'s layout (lib/entry/node.js ↔ src/entry/node.js), so the
// relative URL of the .wasm is the same from both. The edge and browser
// conditions still load src/ as it is: bundlers there do this job.
//
// Run by scripts/build-js.sh, `npm test` (pretest), `npm run bench` and
// `npm pack` (prepack), so lib/ never lags src/. Takes about 10 ms. Only
// files whose bytes change are written (each to a temporary name, then
// renamed), and files no longer produced are removed, so rebuilding an
// up-to-date lib/ — `npm pack` inside a running test suite — touches nothing
// a concurrent import could be reading.
import { build } from "esbuild";
import { mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const js = fileURLToPath(new URL("../", import.meta.url));
const outdir = join(js, "lib");

const result = await build({
  absWorkingDir: js,
  entryPoints: ["src/entry/node.js", "src/entry/init.js", "src/file-storage.js"],
  outbase: "src",
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node18",
  chunkNames: "chunk-[hash]",
  // Only our own modules are joined; node: built-ins and the generated glue's
  // sibling .wasm stay where they are.
  packages: "external",
  legalComments: "none",
  logLevel: "warning",
  write: false,
  metafile: true,
});

const wanted = new Map(result.outputFiles.map((f) => [f.path, f.contents]));

// lib/client.js: what src/client.js exports, from the build's one instance.
const initOut = join(outdir, "entry", "init.js");
const initExports = result.metafile.outputs[relative(js, initOut)]?.exports ?? [];
const clientExports = Object.keys(await import("../src/client.js"));
const missing = clientExports.filter((name) => !initExports.includes(name));
if (missing.length > 0) throw new Error(`bundle-node: lib/entry/init.js does not export ${missing.join(", ")}`);
wanted.set(
  join(outdir, "client.js"),
  Buffer.from(
    "// lexecon/client under Node: the same LexeconClient as `lexecon` (scripts/bundle-node.js).\n" +
      `export { ${clientExports.join(", ")} } from "./entry/init.js";\n`,
  ),
);
for (const [path, contents] of wanted) {
  let current;
  try {
    current = readFileSync(path);
  } catch {
    current = undefined;
  }
  if (current === undefined || Buffer.compare(current, contents) !== 0) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(`${path}.tmp`, contents);
    renameSync(`${path}.tmp`, path);
  }
}
let existing = [];
try {
  existing = readdirSync(outdir, { recursive: true, withFileTypes: true });
} catch {
  existing = [];
}
for (const entry of existing) {
  const path = join(entry.parentPath ?? entry.path, entry.name);
  if (entry.isFile() && !wanted.has(path)) rmSync(path);
}
