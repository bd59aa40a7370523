// Reads the top-level layout of a WebAssembly binary: its sections and the
// unsigned LEB128 numbers they are written with. Used by
// scripts/drop-multivalue.js (the build) and test/wasm-shape.test.js.

/**
 * Reads an unsigned LEB128 (at most 32 bits) at `pos`.
 * @param {Uint8Array} bytes
 * @param {number} pos
 * @returns {[number, number]} the value and the position after it
 */
export function readU32(bytes, pos) {
  let value = 0;
  for (let shift = 0; ; shift += 7) {
    if (pos >= bytes.length) throw new Error("truncated LEB128");
    if (shift > 28) throw new Error("LEB128 too long for a u32");
    const byte = bytes[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) return [value, pos];
  }
}

/**
 * Encodes an unsigned LEB128.
 * @param {number} value
 * @returns {Uint8Array}
 */
export function encodeU32(value) {
  const out = [];
  do {
    let byte = value & 0x7f;
    value = Math.floor(value / 128);
    if (value) byte |= 0x80;
    out.push(byte);
  } while (value);
  return Uint8Array.from(out);
}

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/**
 * The module's sections in order: id, where the section starts (its id
 * byte), where its body starts and where it ends.
 * @param {Uint8Array} bytes
 * @returns {Generator<{ id: number, start: number, bodyStart: number, end: number }>}
 */
export function* sections(bytes) {
  if (bytes.length < 8 || HEADER.some((b, i) => bytes[i] !== b)) {
    throw new Error("not a WebAssembly module (version 1)");
  }
  let start = 8;
  while (start < bytes.length) {
    const [size, bodyStart] = readU32(bytes, start + 1);
    const end = bodyStart + size;
    if (end > bytes.length) throw new Error(`the section at byte ${start} runs past the end`);
    yield { id: bytes[start], start, bodyStart, end };
    start = end;
  }
}
