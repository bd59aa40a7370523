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
// signatures (js/README.md, "Figures"). Without the feature the exports return
// through linear memory and compile needs no wrapper at all; a call costs two
// tiny extra wasm calls (moving the shadow stack pointer).
//
// Only the feature list changes: no code is touched, and the engine never
// returns multiple values itself (Rust's `extern "C"` ABI does not).
import { readFileSync, writeFileSync } from "node:fs";

const [input, output] = process.argv.slice(2);
if (!input || !output) {
  console.error("usage: node drop-multivalue.js <in.wasm> <out.wasm>");
  process.exit(2);
}

/** Reads an unsigned LEB128 at `pos`; returns [value, next position]. */
function readU32(bytes, pos) {
  let value = 0;
  let shift = 0;
  for (;;) {
    if (pos >= bytes.length) throw new Error("truncated LEB128");
    const byte = bytes[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, pos];
    shift += 7;
    if (shift > 28) throw new Error("LEB128 too long for a u32");
  }
}

/** Encodes an unsigned LEB128. */
function u32(value) {
  const out = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return Uint8Array.from(out);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
const wasm = readFileSync(input);
const header = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
if (wasm.length < 8 || header.some((b, i) => wasm[i] !== b)) {
  throw new Error(`${input} is not a WebAssembly module (version 1)`);
}

const parts = [wasm.subarray(0, 8)];
let removed = false;
let pos = 8;
while (pos < wasm.length) {
  const id = wasm[pos];
  const [size, bodyStart] = readU32(wasm, pos + 1);
  const end = bodyStart + size;
  if (end > wasm.length) throw new Error(`${input}: section at byte ${pos} runs past the end`);
  let section = wasm.subarray(pos, end);
  if (id === 0) {
    const [nameLength, nameStart] = readU32(wasm, bodyStart);
    const name = utf8.decode(wasm.subarray(nameStart, nameStart + nameLength));
    if (name === "target_features") {
      // A vector of (prefix byte '+', '-' or '=', feature name).
      let [count, p] = readU32(wasm, nameStart + nameLength);
      const kept = [];
      for (; count > 0; count--) {
        const start = p;
        const [length, featureStart] = readU32(wasm, p + 1);
        p = featureStart + length;
        if (utf8.decode(wasm.subarray(featureStart, p)) === "multivalue") removed = true;
        else kept.push(wasm.subarray(start, p));
      }
      const payload = Buffer.concat([u32(nameLength), Buffer.from(name), u32(kept.length), ...kept]);
      section = Buffer.concat([Uint8Array.of(0), u32(payload.length), payload]);
    }
  }
  parts.push(section);
  pos = end;
}

writeFileSync(output, Buffer.concat(parts));
console.error(removed ? `drop-multivalue: ${output} no longer lists multivalue` : `drop-multivalue: ${input} did not list multivalue`);
