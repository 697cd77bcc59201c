// Verify a webhook delivery the way a Node receiver would: the standardwebhooks
// package's Webhook(secret).verify(body, headers).
// Usage: node verify_webhook.mjs SECRET HEADERS_JSON BODY
// Prints the verified payload's type and exits 0, or prints the error and exits 1.
import { createRequire } from "node:module";
import path from "node:path";

// ESM ignores NODE_PATH: resolve the package from the cache folder (the working dir).
const require = createRequire(path.join(process.cwd(), "noop.js"));
const { Webhook } = await import(require.resolve("standardwebhooks"));

const [secret, headers, body] = process.argv.slice(2);
try {
  const payload = new Webhook(secret).verify(body, JSON.parse(headers));
  console.log(payload.type);
} catch (error) {
  console.log(`${error.name}: ${error.message}`);
  process.exit(1);
}
