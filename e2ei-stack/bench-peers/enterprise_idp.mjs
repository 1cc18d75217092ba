// An organisation's own OpenID Provider for `wire-oidc-01` (e2ei-stack/tests/enterprise_idp.rs):
// node-oidc-provider over HTTPS on 127.0.0.1, configured as Wire's Keycloak mapper is. It
// echoes the `keyauth` and `acme_aud` values the device asks for in the OpenID Connect `claims`
// request parameter (OIDC Core §5.5: {"id_token": {"keyauth": {"essential": true, "value": …},
// "acme_aud": {…}}}) into the ID token, and puts the Wire identity claims there too: `name` (the
// display name) and `preferred_username` (`handle@domain`). Development login and consent pages
// (any password); RS256 ID tokens signed by a key of its own.
//
// usage: node enterprise_idp.mjs <cert.pem> <key.pem>
// Environment:
//   CLIENT_ID      the device application's client (required)
//   CLIENT_SECRET  makes it confidential (client_secret_basic); absent: a public client (PKCE)
//   REDIRECT_URI   its redirect URI (a native client: any port of a loopback address matches)
//   USERS          JSON: login name -> {"name": …, "preferred_username": …}
//   ECHO           "both" (default), "no-keyauth" (the mapper is missing: keyauth not echoed)
//                  or "wrong-acme-aud" (acme_aud echoed with another challenge URL)
// Prints "listening ISSUER" when it serves.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const [cert, key] = process.argv.slice(2);
const { CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, USERS, ECHO = 'both' } = process.env;
if (!cert || !key || !CLIENT_ID || !REDIRECT_URI || !USERS) {
  console.error('usage: CLIENT_ID=… REDIRECT_URI=… USERS=… node enterprise_idp.mjs <cert.pem> <key.pem>');
  process.exit(2);
}
if (!['both', 'no-keyauth', 'wrong-acme-aud'].includes(ECHO)) {
  console.error(`unknown ECHO ${ECHO}`);
  process.exit(2);
}
const users = JSON.parse(USERS);

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'enterprise-rs256', alg: 'RS256', use: 'sig' };

// What the mapper copies from the claims request: the requested value of a claim, when it is a
// string (anything else is not echoed).
function requested(claims, name) {
  const value = claims?.[name]?.value;
  return typeof value === 'string' ? value : undefined;
}

function account(id) {
  const user = users[id];
  if (!user) return undefined;
  return {
    accountId: id,
    // `claims` holds what the claims parameter asked for in this token (`use`), as granted.
    async claims(use, scope, claims) {
      const released = { sub: id, name: user.name, preferred_username: user.preferred_username };
      if (use === 'id_token') {
        const keyauth = requested(claims, 'keyauth');
        const acmeAud = requested(claims, 'acme_aud');
        if (keyauth !== undefined && ECHO !== 'no-keyauth') released.keyauth = keyauth;
        if (acmeAud !== undefined) {
          released.acme_aud = ECHO === 'wrong-acme-aud' ? `${acmeAud}-not-this-one` : acmeAud;
        }
      }
      return released;
    },
  };
}

const server = createServer({ cert: readFileSync(cert), key: readFileSync(key) });
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `https://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    ...(CLIENT_SECRET ? { client_secret: CLIENT_SECRET } : {}),
    application_type: 'native',
    redirect_uris: [REDIRECT_URI],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: CLIENT_SECRET ? 'client_secret_basic' : 'none',
  }],
  jwks: { keys: [signingJwk] },
  findAccount: (ctx, id) => account(id),
  // `keyauth` and `acme_aud` are claims of their own (no scope releases them): only the claims
  // parameter asks for them.
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    keyauth: null,
    acme_aud: null,
  },
  // The profile claims in the ID token itself, as Keycloak puts them there.
  conformIdTokenClaims: false,
  features: {
    claimsParameter: { enabled: true },
    devInteractions: { enabled: true },
  },
  pkce: { required: () => true },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));
server.on('request', provider.callback());
console.log(`listening ${issuer}`);
