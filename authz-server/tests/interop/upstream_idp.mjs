// An upstream OpenID Provider for the federation tests: node-oidc-provider on
// http://127.0.0.1:{ephemeral port} with its development login and consent pages (any login
// name, any password), one confidential client (client_secret_basic) whose redirect URI is
// the authz-server's callback, and RS256 ID tokens carrying the profile and email claims.
//
// Protocol with the test: prints "listening ISSUER" once bound; then reads one line from stdin,
// the authz-server's callback URL, configures itself, and prints "ready".
//
// Environment: CLIENT_ID, CLIENT_SECRET; TAMPER (optional) re-signs every ID token from the
// token endpoint with one thing wrong: "nonce" (another nonce), "aud" (another audience),
// "iss" (another issuer), "exp" (expired an hour ago), "none" (alg none, no signature) or "kid"
// (a key id the JWKS does not have).
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { generateKeyPairSync, sign } from 'node:crypto';
import Provider from 'oidc-provider';

const { CLIENT_ID, CLIENT_SECRET, TAMPER } = process.env;
if (!CLIENT_ID || !CLIENT_SECRET) {
  console.error('CLIENT_ID and CLIENT_SECRET are required');
  process.exit(2);
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'upstream-rs256', alg: 'RS256', use: 'sig' };

let handler = (req, res) => { res.statusCode = 503; res.end('not configured yet'); };
const server = createServer((req, res) => handler(req, res));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
console.log(`listening ${issuer}`);

const lines = createInterface({ input: process.stdin });
const callback = await new Promise((resolve) => lines.once('line', (line) => resolve(line.trim())));

// Login name L is the account with sub L (the development login page makes the login name the
// account id), the handle L, and an e-mail address at corp.example.
function account(id) {
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        preferred_username: id,
        name: `Upstream ${id}`,
        email: `${id}@corp.example`,
        email_verified: true,
      };
    },
  };
}

const b64 = (value) => Buffer.from(value).toString('base64url');

function tamper(idToken) {
  const [h, p] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const payload = JSON.parse(Buffer.from(p, 'base64url'));
  if (TAMPER === 'nonce') payload.nonce = 'not-the-nonce-that-was-sent';
  if (TAMPER === 'aud') payload.aud = 'another-client';
  if (TAMPER === 'iss') payload.iss = 'https://elsewhere.example';
  if (TAMPER === 'exp') {
    payload.iat -= 7200;
    payload.exp = payload.iat + 3600;
  }
  if (TAMPER === 'kid') header.kid = 'a-key-nobody-published';
  if (TAMPER === 'none') {
    return `${b64(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${b64(JSON.stringify(payload))}.`;
  }
  const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}`;
  return `${input}.${sign('sha256', Buffer.from(input), privateKey).toString('base64url')}`;
}

const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: [callback],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signingJwk] },
  findAccount: (ctx, id) => account(id),
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  // The profile and email claims in the ID token itself, not only at the userinfo endpoint.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

if (TAMPER) {
  provider.use(async (ctx, next) => {
    await next();
    if (ctx.path === '/token' && ctx.body && typeof ctx.body.id_token === 'string') {
      ctx.body = { ...ctx.body, id_token: tamper(ctx.body.id_token) };
    }
  });
}

handler = provider.callback();
console.log('ready');
