// A real OpenID Provider on loopback for the sign-in tests: panva's
// oidc-provider (certified), with its development login and consent pages.
// Usage: node oidc_provider.mjs CONFIG_JSON
//   CONFIG_JSON: {"clients": [...client metadata], "accounts": {id: {email, email_verified}}}
// Prints "listening ISSUER" once it serves; any login name of `accounts` signs
// in (the password is not checked: these are development interactions).
import { createRequire } from "node:module";
import http from "node:http";
import path from "node:path";

// ESM ignores NODE_PATH: resolve the package from the cache folder (the working dir).
const require = createRequire(path.join(process.cwd(), "noop.js"));
const { default: Provider } = await import(require.resolve("oidc-provider"));

const config = JSON.parse(process.argv[2]);
const server = http.createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: config.clients,
  async findAccount(ctx, id) {
    const account = config.accounts[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...account }) };
  },
  claims: { openid: ["sub"], email: ["email", "email_verified"] },
  pkce: { required: () => true },
  // The email claims go in the ID token itself, as the service reads them there.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ["test-only-cookie-key"] },
});
provider.on("server_error", (ctx, error) => console.error(error));
server.on("request", provider.callback());
console.log(`listening ${issuer}`);
