// The shipped .wasm's exports return at most one value each. Node 20's V8
// compiles a JS-to-wasm wrapper for every distinct multi-value signature
// while it compiles the module (~2 ms of `import "lexecon"`); single-result
// exports share its generic wrapper. scripts/build-js.sh keeps wasm-bindgen
// from emitting multi-value returns (js/scripts/drop-multivalue.js).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import test from "node:test";
import { readU32, sections } from "../scripts/wasm-sections.js";

const wasm = readFileSync(new URL("../dist/wasm/lexecon_js_bg.wasm", import.meta.url));

/** A cursor over `bytes`, reading bytes and LEB128 numbers in order. */
function reader(bytes, pos) {
  return {
    get pos() {
      return pos;
    },
    byte() {
      return bytes[pos++];
    },
    u32() {
      let value;
      [value, pos] = readU32(bytes, pos);
      return value;
    },
    skip(n) {
      pos += n;
    },
  };
}

/** Skips one value type (numeric, vector or reference; `ref null? ht` too). */
function skipValueType(r) {
  const t = r.byte();
  if (t === 0x63 || t === 0x64) r.u32(); // (ref null? heaptype): a heap type index or code
}

/** Result counts of the module's function types, the functions' types, and the exported functions. */
function shape(bytes) {
  const resultCounts = [];
  const funcTypes = [];
  const exports = [];
  for (const { id, bodyStart } of sections(bytes)) {
    const r = reader(bytes, bodyStart);
    if (id === 1) {
      for (let n = r.u32(); n > 0; n--) {
        assert.equal(r.byte(), 0x60, "a plain function type (no GC recursion groups)");
        for (let p = r.u32(); p > 0; p--) skipValueType(r);
        const results = r.u32();
        for (let q = results; q > 0; q--) skipValueType(r);
        resultCounts.push(results);
      }
    } else if (id === 2) {
      for (let n = r.u32(); n > 0; n--) {
        r.skip(r.u32());
        r.skip(r.u32());
        const kind = r.byte();
        if (kind === 0) {
          funcTypes.push(r.u32()); // an imported function: its type
        } else if (kind === 1 || kind === 2) {
          if (kind === 1) skipValueType(r); // a table's element type
          const flags = r.byte(); // limits: min, and max when flags & 1
          r.u32();
          if (flags & 1) r.u32();
        } else if (kind === 3) {
          skipValueType(r); // a global: type and mutability
          r.byte();
        } else {
          r.byte(); // a tag: attribute and type
          r.u32();
        }
      }
    } else if (id === 3) {
      for (let n = r.u32(); n > 0; n--) funcTypes.push(r.u32());
    } else if (id === 7) {
      for (let n = r.u32(); n > 0; n--) {
        const length = r.u32();
        const name = new TextDecoder().decode(bytes.subarray(r.pos, r.pos + length));
        r.skip(length);
        const kind = r.byte();
        const index = r.u32();
        if (kind === 0) exports.push({ name, index });
      }
    }
  }
  return { resultCounts, funcTypes, exports };
}

test("the wasm's exported functions return at most one value (no multi-value signatures)", () => {
  const { resultCounts, funcTypes, exports } = shape(wasm);
  assert.ok(exports.length > 10, `found ${exports.length} exported functions`);
  const multi = exports
    .map(({ name, index }) => ({ name, results: resultCounts[funcTypes[index]] }))
    .filter((e) => e.results > 1);
  assert.deepEqual(multi, [], "exports with multi-value results (rebuild with scripts/build-js.sh)");
  // The same names as WebAssembly's own reading of the module.
  const names = WebAssembly.Module.exports(new WebAssembly.Module(wasm))
    .filter((e) => e.kind === "function")
    .map((e) => e.name);
  assert.deepEqual(
    exports.map((e) => e.name),
    names,
  );
});
