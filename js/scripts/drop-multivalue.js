// Removes `multivalue` from a .wasm's `target_features` section, so that
// wasm-bindgen returns through memory (a return pointer) instead of with
// multi-value returns. Run by scripts/build-js.sh between `cargo build` and
// `wasm-bindgen`:
//
//   node js/scripts/drop-multivalue.js <in.wasm> <out.wasm>
//
// Why: Rust's standard library is built with multivalue, so the linked module
// lists it, and wasm-bindgen then gives every export that returns a string, a
// Result or a pair a multi-value signature. V8 up to Node 20 (V8 11.3) runs
// single-result exports through one generic JS-to-wasm wrapper, but compiles a
// wrapper of its own for each distinct multi-value signature, inside
// `new WebAssembly.Module`: ~2 ms of a ~5 ms compile for our nine such
// signatures (PERFORMANCE.md, npm part). Without the feature the exports return
// through linear memory and compile needs no wrapper at all; a call costs two
// tiny extra wasm calls (moving the shadow stack pointer).
//
// Only the feature list changes: no code is touched, and the engine never
// returns multiple values itself (Rust's `extern "C"` ABI does not).
import { readFileSync, writeFileSync } from "node:fs";
import { encodeU32, readU32, sections } from "./wasm-sections.js";

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error("usage: node drop-multivalue.js <in.wasm> <out.wasm>");
  process.exit(2);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * `wasm` with `multivalue` left out of its `target_features` section.
 * @param {Buffer} wasm
 * @returns {{ bytes: Buffer, removed: boolean }}
 */
function dropMultivalue(wasm) {
  const parts = [wasm.subarray(0, 8)];
  let removed = false;
  for (const { id, start, bodyStart, end } of sections(wasm)) {
    let section = wasm.subarray(start, end);
    if (id === 0) {
      const [nameLength, nameStart] = readU32(wasm, bodyStart);
      const name = utf8.decode(wasm.subarray(nameStart, nameStart + nameLength));
      if (name === "target_features") {
        // A vector of (prefix byte '+', '-' or '=', feature name).
        let [count, p] = readU32(wasm, nameStart + nameLength);
        const kept = [];
        for (; count > 0; count--) {
          const feature = p;
          const [length, featureStart] = readU32(wasm, p + 1);
          p = featureStart + length;
          if (utf8.decode(wasm.subarray(featureStart, p)) === "multivalue") removed = true;
          else kept.push(wasm.subarray(feature, p));
        }
        const payload = Buffer.concat([encodeU32(nameLength), Buffer.from(name), encodeU32(kept.length), ...kept]);
        section = Buffer.concat([Uint8Array.of(0), encodeU32(payload.length), payload]);
      }
    }
    parts.push(section);
  }
  return { bytes: Buffer.concat(parts), removed };
}

let result;
try {
  result = dropMultivalue(readFileSync(input));
} catch (e) {
  console.error(`drop-multivalue: ${input}: ${e instanceof Error ? e.message : e}`);
  process.exit(1);
}
writeFileSync(output, result.bytes);
console.error(result.removed ? `drop-multivalue: ${output} no longer lists multivalue` : `drop-multivalue: ${input} did not list multivalue`);
