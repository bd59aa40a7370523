// One process that opens a file ledger for writing at a given moment
// (file-storage.test.js starts several at once): prints "open" or the
// refusal's code, then holds the ledger for a moment before closing it.
import { fileStorage } from "lexecon";

const [path, startAt] = process.argv.slice(2);
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(startAt) - Date.now())));
const storage = fileStorage(path);
try {
  await storage.open();
  console.log("open");
  await new Promise((resolve) => setTimeout(resolve, 300));
} catch (e) {
  console.log(e.code ?? String(e));
} finally {
  await storage.close();
}
