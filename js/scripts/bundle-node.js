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
// lib/ keeps src/'s layout (lib/entry/node.js ↔ src/entry/node.js), so the
// relative URL of the .wasm is the same from both. The edge and browser
// conditions still load src/ as it is: bundlers there do this job.
//
// Run by scripts/build-js.sh, `npm test` (pretest) and `npm pack` (prepack),
// so lib/ never lags src/. Takes about 10 ms.
import { build } from "esbuild";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const js = fileURLToPath(new URL("../", import.meta.url));
const outdir = `${js}lib`;

rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: js,
  entryPoints: ["src/entry/node.js", "src/entry/init.js", "src/file-storage.js", "src/client.js"],
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
});
