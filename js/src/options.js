// Options as the package's functions take them: by name, and only names
// they know. Imports nothing, so every build (lib/entry/node-require.js
// inlines it) can take it as it is.

/**
 * Options as a function takes them: absent (`{}`), or an object naming only
 * `known` keys. A misspelt option (`readonly`, `risk_level`, `tol`) must
 * not be dropped unnoticed: it would turn a check off or fall back to a
 * default.
 * @param {unknown} options
 * @param {string} what who takes them, for messages: `governed`, `the token check`
 * @param {string[]} known
 * @param {string} shape appended to the "must be an object" message: ` ({ readOnly? })`
 * @param {(message: string, field: string) => Error} refuse the error, with the key at fault (`options` for the whole)
 * @param {(key: string) => string} [hint] appended to an unknown key's message
 * @returns {Record<string, unknown>}
 */
export function knownOptions(options, what, known, shape, refuse, hint = () => "") {
  if (options === undefined || options === null) return {};
  if (typeof options !== "object" || Array.isArray(options)) {
    throw refuse(`${what}'s options must be an object${shape}`, "options");
  }
  const o = /** @type {Record<string, unknown>} */ (options);
  const unknown = Object.keys(o).find((key) => !known.includes(key));
  if (unknown !== undefined) {
    throw refuse(`unknown option \`${unknown}\` for ${what} (known: ${known.join(", ")})${hint(unknown)}`, unknown);
  }
  return o;
}
