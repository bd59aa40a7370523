// `npm test` runs this first: the tests need the generated WebAssembly.
import { existsSync } from "node:fs";

for (const f of ["dist/wasm/lexecon_js.js", "dist/wasm/lexecon_js_bg.wasm"]) {
  if (!existsSync(new URL(`../${f}`, import.meta.url))) {
    console.error(`js/${f} is missing: run \`bash scripts/build-js.sh\` from the repository root first`);
    process.exit(1);
  }
}
