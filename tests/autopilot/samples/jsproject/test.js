// The project's test suite, as a tool like ava or nyc runs it: it keeps a cache where
// find-cache-dir says (node_modules/.cache, or CACHE_DIR), and cannot run without one.
const fs = require("fs");
const path = require("path");
const findCacheDir = require("find-cache-dir");

const cache = findCacheDir({ name: "sample-tests", create: true });
if (!cache) {
  console.error("find-cache-dir found no writable cache folder (node_modules is read-only)");
  process.exit(1);
}
fs.writeFileSync(path.join(cache, "last-run"), new Date().toISOString());
const files = fs.readdirSync(".").filter((name) => /^T\d+\.txt$/.test(name));
for (const name of files) {
  if (!fs.readFileSync(name, "utf8").startsWith(name.slice(0, -4))) {
    console.error(`not ok: ${name}`);
    process.exit(1);
  }
}
console.log(`ok ${files.length} task file(s), cache in ${cache}`);
