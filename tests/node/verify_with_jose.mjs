// Verify an access token the way a Node service of the platform would: jose's
// createRemoteJWKSet against the service's JWKS, issuer and audience checked.
// Usage: node verify_with_jose.mjs JWKS_URI ISSUER AUDIENCE TOKEN
// Prints {"sub", "alg", "roles"} and exits 0, or prints the error and exits 1.
import { createRequire } from "node:module";
import path from "node:path";

// ESM ignores NODE_PATH: resolve jose from the cache folder (the working dir).
const require = createRequire(path.join(process.cwd(), "noop.js"));
const jose = await import(require.resolve("jose"));

const [jwksUri, issuer, audience, token] = process.argv.slice(2);
try {
  const keys = jose.createRemoteJWKSet(new URL(jwksUri));
  const { payload, protectedHeader } = await jose.jwtVerify(token, keys, {
    issuer,
    audience,
    typ: "at+jwt",
  });
  const published = await (await fetch(jwksUri)).json();
  for (const key of published.keys) {
    const thumbprint = await jose.calculateJwkThumbprint(key);
    if (Buffer.from(thumbprint, "base64url").toString("hex") !== key.kid) {
      throw new Error(`kid ${key.kid} is not the key's RFC 7638 thumbprint in hex`);
    }
  }
  console.log(JSON.stringify({ sub: payload.sub, alg: protectedHeader.alg, roles: payload.roles }));
} catch (error) {
  console.log(`${error.code ?? "ERROR"}: ${error.message}`);
  process.exit(1);
}
