// Ed25519 keys as the package takes them: 32 bytes, 64 hex digits, or the
// PEM text a Rust host node keeps in `keys/` (PKCS#8 private key, SPKI public
// key), so a node's files can be used as they are.
import { LexeconConfigError } from "./errors.js";

// DER before the 32 key bytes: PKCS#8 v1 (RFC 8410 §7), PKCS#8 v2 with the
// public key after the seed (what `lexecon init` writes), and SPKI.
const PKCS8_V1 = [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
const PKCS8_V2 = [0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
const PKCS8_V2_PUBLIC = [0x81, 0x21, 0x00];
const SPKI = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/**
 * The 32 key bytes of `value` (a fresh copy the caller may wipe).
 * @param {unknown} value 32 bytes, 64 hex digits, or PEM
 * @param {"signingKey" | "publicKey"} option the option's name, for errors
 * @param {"PRIVATE KEY" | "PUBLIC KEY"} label the PEM this option takes
 * @returns {Uint8Array}
 */
export function keyBytes(value, option, label) {
  const expected = `${option} must be 32 bytes, 64 hex digits or an Ed25519 "${label}" PEM`;
  if (typeof value === "string") {
    const text = value.trim();
    if (/^[0-9a-fA-F]{64}$/.test(text)) {
      const out = new Uint8Array(32);
      for (let i = 0; i < 32; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
      return out;
    }
    const pem = /^-----BEGIN ([A-Z ]+)-----([A-Za-z0-9+/=\s]+)-----END \1-----$/.exec(text);
    if (!pem) throw new LexeconConfigError(expected);
    if (pem[1] !== label) throw new LexeconConfigError(`${option} takes a "${label}" PEM, not "${pem[1]}"`);
    let der;
    try {
      der = Uint8Array.from(atob(pem[2].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
    } catch {
      throw new LexeconConfigError(`${option}: the PEM's base64 does not decode`);
    }
    const key = label === "PUBLIC KEY" ? after(der, SPKI, 0) : (after(der, PKCS8_V1, 0) ?? pkcs8v2(der));
    if (!key) throw new LexeconConfigError(`${option}: the PEM is not an Ed25519 ${label.toLowerCase()}`);
    return key;
  }
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    const bytes = ArrayBuffer.isView(value)
      ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
      : new Uint8Array(value);
    if (bytes.length !== 32) throw new LexeconConfigError(`${option} must be 32 bytes, got ${bytes.length}`);
    return bytes.slice();
  }
  throw new LexeconConfigError(expected);
}

/** The 32 bytes after `prefix` when `der` is exactly prefix + 32 + `trailing` bytes. */
function after(der, prefix, trailing) {
  if (der.length !== prefix.length + 32 + trailing || !prefix.every((b, i) => der[i] === b)) return undefined;
  return der.slice(prefix.length, prefix.length + 32);
}

/** The seed of a PKCS#8 v2 key: prefix, seed, `[1]` public key. */
function pkcs8v2(der) {
  const seed = after(der, PKCS8_V2, PKCS8_V2_PUBLIC.length + 32);
  const at = PKCS8_V2.length + 32;
  return seed && PKCS8_V2_PUBLIC.every((b, i) => der[at + i] === b) ? seed : undefined;
}
