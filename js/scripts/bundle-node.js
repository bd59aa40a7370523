// Builds lib/: what Node loads for `lexecon`, `lexecon/init`, `lexecon/file`
// and `lexecon/client` (the `node` conditions in package.json).
//
// src/ is ten small ES modules. Node resolves, reads, compiles and links each
// one, and that was about a fifth of `import "lexecon"` (some 2.5 ms of 12;
// PERFORMANCE.md, npm part). esbuild joins them: each entry point
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
// The generated glue's fallback `new URL('lexecon_js_bg.wasm',
// import.meta.url)` (used only by `init()` without a module) would point
// into lib/, where no .wasm is, and webpack (Next.js's Node.js runtime)
// fails the build on it: "Can't resolve 'lexecon_js_bg.wasm'". lib/ gets an
// error in its place; lib/'s entries always pass the module.
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

const glueFallback = "new URL('lexecon_js_bg.wasm', import.meta.url)";
const noFallback = {
  name: "no-glue-wasm-fallback",
  setup(b) {
    b.onLoad({ filter: /dist[\\/]wasm[\\/]lexecon_js\.js$/ }, (args) => {
      const source = readFileSync(args.path, "utf8");
      if (!source.includes(glueFallback)) {
        throw new Error(`bundle-node: the glue no longer contains ${glueFallback}; update scripts/bundle-node.js`);
      }
      const error = '(() => { throw new Error("lexecon: pass the WebAssembly module, bytes, a Response or a URL to init()"); })()';
      return { contents: source.replace(glueFallback, error), loader: "js" };
    });
  },
};

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
  plugins: [noFallback],
});

const wanted = new Map(result.outputFiles.map((f) => [f.path, f.contents]));

// lib/entry/node-require.js (`require("lexecon")`): its own small build, not
// an entry of the one above. As an entry there, the code it shares with
// lib/entry/node.js only (finding the .wasm, the lazy file ledger) became a
// fourth file for `import "lexecon"` to load, ~0.4 ms more in a side-by-side
// run. Here it takes the package's classes and engine from
// lib/entry/init.js, as src/entry/node-require.js says, and inlines the
// rest; every import of init.js or errors.js stays an import of init.js,
// and the file ledger stays lib/file-storage.js, loaded on first use.
const kept = new Map([
  [join(js, "src", "entry", "init.js"), "./init.js"],
  [join(js, "src", "errors.js"), "./init.js"],
  [join(js, "src", "file-storage.js"), "../file-storage.js"],
]);
const viaInit = {
  name: "via-init",
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (args) => {
      const path = kept.get(join(args.resolveDir, args.path));
      return path ? { path, external: true } : undefined;
    });
  },
};
const requireEntry = await build({
  absWorkingDir: js,
  entryPoints: ["src/entry/node-require.js"],
  outbase: "src",
  outdir,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node18",
  packages: "external",
  legalComments: "none",
  logLevel: "warning",
  write: false,
  plugins: [viaInit],
});
for (const f of requireEntry.outputFiles) wanted.set(f.path, f.contents);

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
