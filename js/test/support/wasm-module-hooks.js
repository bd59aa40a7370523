// Module hooks that make `import m from "./x.wasm"` (and `"./x.wasm?module"`)
// yield a compiled WebAssembly.Module, as wrangler (Cloudflare Workers) and
// Vercel's edge bundler do. Only the tests use this; run with
//   node --conditions=workerd --import ./test/support/register-wasm-hooks.js …
export async function resolve(specifier, context, next) {
  const bare = specifier.replace(/\?module$/, "");
  if (bare.endsWith(".wasm") && context.parentURL) {
    return { url: `${new URL(bare, context.parentURL).href}#compiled-module`, shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (url.endsWith("#compiled-module")) {
    const file = url.slice(0, -"#compiled-module".length);
    return {
      format: "module",
      shortCircuit: true,
      source:
        `import { readFileSync } from "node:fs";\n` +
        `export default new WebAssembly.Module(readFileSync(new URL(${JSON.stringify(file)})));\n`,
    };
  }
  return next(url, context);
}
