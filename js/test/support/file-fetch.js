// Makes `fetch(file:…)` work as it does in Deno and browsers (served
// files), so the default entry (src/entry/web.js) can be exercised in Node.
import { readFile } from "node:fs/promises";

const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = input instanceof URL ? input : new URL(String(input?.url ?? input));
  if (url.protocol === "file:") {
    return new Response(await readFile(url), { headers: { "content-type": "application/wasm" } });
  }
  return realFetch(input, init);
};
