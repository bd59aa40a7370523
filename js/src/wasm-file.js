// Finds and reads the engine's .wasm under Node (and Bun), for the `node`
// and `require` entry points.
//
// The package keeps it at dist/wasm/lexecon_js_bg.wasm. An app bundled into
// one file (esbuild or webpack for a server, AWS Lambda, Next.js's Node.js
// runtime) no longer sits in the package, so two more places are tried, in
// order:
//   1. the package's own copy: the entry passes
//      `new URL("../../dist/wasm/lexecon_js_bg.wasm", import.meta.url)`,
//      written out in that literal form because file tracers (@vercel/nft:
//      Vercel's Node.js functions, Next.js, Nitro) ship the files that form
//      names. Webpack turns it into an asset reference that is no file:
//      URL (`readFileSync` cannot read it); it is then skipped;
//   2. lexecon_js_bg.wasm next to the running file (a bundle, with the .wasm
//      copied beside it);
//   3. `lexecon/lexecon.wasm` resolved from the working directory (a bundle
//      run from a project whose node_modules holds the package).
// If none holds it, the error says what was tried and how to fix it.
import { LexeconError } from "./errors.js";

const FILE_NAME = "lexecon_js_bg.wasm";

/**
 * The .wasm's bytes.
 * @param {(name: string) => any} builtin  returns a Node built-in module (`node:fs`; `node:module` and `node:url` only if the package's own copy is missing)
 * @param {unknown} packaged  the entry's `new URL("../../dist/wasm/lexecon_js_bg.wasm", import.meta.url)`
 * @param {string} base  `import.meta.url` of the entry point
 * @returns {Uint8Array}
 */
export function readWasmFile(builtin, packaged, base) {
  const { readFileSync } = builtin("node:fs");
  const cwd = process.cwd();
  /** @type {[string, () => string | URL][]} */
  const candidates = [
    [
      "the package's dist/wasm/lexecon_js_bg.wasm",
      () => {
        // Webpack's asset reference passes `instanceof URL` (its prototype is
        // URL's) but has no protocol.
        if (!(packaged instanceof URL) || packaged.protocol !== "file:") throw new TypeError("not a file: URL");
        return packaged;
      },
    ],
    [FILE_NAME, () => new URL(FILE_NAME, base)],
    [`lexecon/lexecon.wasm from ${cwd}`, () => builtin("node:module").createRequire(`${cwd}/`).resolve("lexecon/lexecon.wasm")],
  ];
  const tried = [];
  for (const [label, candidate] of candidates) {
    let where;
    try {
      where = candidate();
    } catch {
      // Not a file: URL (webpack's asset reference), or no `lexecon` under
      // the working directory.
      tried.push(label);
      continue;
    }
    const shown = () => (typeof where === "string" ? where : where.protocol === "file:" ? builtin("node:url").fileURLToPath(where) : where.href);
    try {
      return readFileSync(where);
    } catch (e) {
      const code = /** @type {any} */ (e)?.code;
      if (code !== "ENOENT" && code !== "ENOTDIR" && code !== "ERR_INVALID_URL_SCHEME") {
        throw new LexeconError(`cannot read Lexecon's WebAssembly module ${shown()}: ${/** @type {any} */ (e)?.message ?? e}`, {
          code: "wasm_not_found",
          cause: e,
        });
      }
      tried.push(shown());
    }
  }
  throw new LexeconError(
    `cannot find Lexecon's WebAssembly module (tried ${tried.join(", ")}). ` +
      "If your app is bundled, copy node_modules/lexecon/dist/wasm/lexecon_js_bg.wasm next to the bundle, " +
      "leave `lexecon` out of the bundle (esbuild --external:lexecon), " +
      "or import from `lexecon/init` and pass the module to `initSync`",
    { code: "wasm_not_found" },
  );
}
