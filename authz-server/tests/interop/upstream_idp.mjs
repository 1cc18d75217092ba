// An upstream OpenID Provider for the federation tests: node-oidc-provider on
// http://127.0.0.1:{ephemeral port} with its development login and consent pages (any login
// name, any password), one confidential client whose redirect URI is the authz-server's
// callback (authorization code and refresh token grants; refresh tokens rotated, so each is
// single-use), and RS256 ID tokens carrying the profile and email claims. The same provider
// also serves as a plain OAuth 2.0 server (GitHub-style): asked for scopes without openid
// (read:user, user:email) it issues access tokens only, and GET /api/user answers GitHub's
// shape ({"id": number, "login", "name", "email"}) for an access token it issued
// (provider.AccessToken.find) that carries read:user.
//
// Protocol with the test: prints "listening ISSUER" once bound; then reads one line from stdin,
// the authz-server's callback URL, configures itself, and prints "ready".
//
// Test routes: GET /test/refreshes counts the refresh token grants it answered; POST /test/hold,
// GET /test/held and POST /test/release hold token requests (see below); POST
// /test/revoke-refresh-tokens destroys every refresh token it issued (a later refresh gets
// invalid_grant); GET /test/discoveries counts the requests for its discovery document; POST
// /test/release-discovery answers the discovery requests held (HOLD_DISCOVERY) and stops holding.
//
// Environment: CLIENT_ID; CLIENT_SECRET (for the secret methods); CLIENT_AUTH (the client's
// token_endpoint_auth_method, default client_secret_basic); CLIENT_JWKS (the client's public
// JWK Set, JSON, for private_key_jwt); ACCESS_TOKEN_TTL (seconds, default the provider's);
// TAMPER (optional) re-signs every ID token from the token endpoint with one thing wrong:
// "nonce" (another nonce), "aud" (another audience), "iss" (another issuer), "exp" (expired an
// hour ago), "none" (alg none, no signature) or "kid" (a key id the JWKS does not have).
// HOLD_DISCOVERY (optional) holds every discovery request until POST /test/release-discovery,
// printing "discovery held" when the first arrives.
//
// The `team` claim is released only at the userinfo endpoint (/me), never in the ID token.
//
// GA4GH visas: with the scope ga4gh_passport_v1 its userinfo (only) releases a
// `ga4gh_passport_v1` claim, as a Broker does (GA4GH AAI profile v1.2): four entries for each
// account — a ControlledAccessGrants and an AffiliationAndRole visa signed with its own ES256
// visa key (typ vnd.ga4gh.visa+jwt, jku {issuer}/test/visa-jwks, where that key is published),
// one such visa that expired an hour ago, and a string that is no visa at all. Each account's
// visas are made once and then released as they are (ECDSA signatures differ at each signing).
// GET /test/visas?sub=S answers {"visas": [...]} (the same four); after POST /test/drop-visas
// the claim is left out. POST /test/extra-visa?visa=V adds V to every account's claim from then
// on (an upstream passing on a visa it got elsewhere).
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { generateKeyPairSync, sign } from 'node:crypto';
import Provider from 'oidc-provider';

const {
  CLIENT_ID, CLIENT_SECRET, TAMPER, CLIENT_JWKS, ACCESS_TOKEN_TTL, HOLD_DISCOVERY,
} = process.env;
const CLIENT_AUTH = process.env.CLIENT_AUTH || 'client_secret_basic';
if (!CLIENT_ID || (CLIENT_AUTH === 'private_key_jwt' ? !CLIENT_JWKS : !CLIENT_SECRET)) {
  console.error('CLIENT_ID and CLIENT_SECRET (or CLIENT_JWKS for private_key_jwt) are required');
  process.exit(2);
}

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const visaKeys = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const visaJwk = { ...visaKeys.publicKey.export({ format: 'jwk' }), kid: 'upstream-visa-es256', alg: 'ES256', use: 'sig' };
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'upstream-rs256', alg: 'RS256', use: 'sig' };

let handler = (req, res) => { res.statusCode = 503; res.end('not configured yet'); };
const server = createServer((req, res) => handler(req, res));
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
console.log(`listening ${issuer}`);

const lines = createInterface({ input: process.stdin });
const callback = await new Promise((resolve) => lines.once('line', (line) => resolve(line.trim())));

// Login name L is the account with sub L (the development login page makes the login name the
// account id), the handle L, an e-mail address at corp.example, and Keycloak-style `groups`:
// ["staff"], and "ops" too for a login name starting with "ops", "admin" for one starting with
// "adm" — none at all after POST /test/drop-groups (as an upstream leaves out an empty list).
let groupsDropped = false;
let visasDropped = false;
const extraVisas = [];

// The visas of each account, made at its first use (see the top).
const visasOf = new Map();
function signVisa(payload) {
  const header = { alg: 'ES256', typ: 'vnd.ga4gh.visa+jwt', jku: `${issuer}/test/visa-jwks`, kid: visaJwk.kid };
  const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(payload))}`;
  const signature = sign('sha256', Buffer.from(input), { key: visaKeys.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}
function visas(sub) {
  if (!visasOf.has(sub)) {
    const now = Math.floor(Date.now() / 1000);
    const visa = (jti, iat, exp, object) => signVisa({ iss: issuer, sub, iat, exp, jti: `${sub}-${jti}`, ga4gh_visa_v1: object });
    visasOf.set(sub, [
      visa('grant', now, now + 3600, {
        type: 'ControlledAccessGrants', asserted: now - 86400, by: 'dac',
        value: 'https://datasets.corp.example/EGAD0001', source: 'https://dac.corp.example/EGAC0001',
      }),
      visa('affiliation', now, now + 3600, {
        type: 'AffiliationAndRole', asserted: now - 86400, by: 'system',
        value: 'faculty@corp.example', source: 'https://corp.example',
      }),
      visa('expired', now - 7200, now - 3600, {
        type: 'ResearcherStatus', asserted: now - 86400, by: 'so',
        value: 'https://doi.org/10.1038/s41431-018-0219-y', source: 'https://corp.example',
      }),
      'not-a-visa',
    ]);
  }
  return visasOf.get(sub);
}

function account(id) {
  return {
    accountId: id,
    async claims(use) {
      return {
        sub: id,
        preferred_username: id,
        name: `Upstream ${id}`,
        email: `${id}@corp.example`,
        email_verified: true,
        ...(groupsDropped ? {} : {
          groups: ['staff', ...(id.startsWith('ops') ? ['ops'] : []), ...(id.startsWith('adm') ? ['admin'] : [])],
        }),
        ...(use === 'userinfo' ? { team: 'upstream-team' } : {}),
        ...(use === 'userinfo' && !visasDropped ? { ga4gh_passport_v1: [...visas(id), ...extraVisas] } : {}),
      };
    },
  };
}

// GitHub's numeric user id of a login: 12345 for "octo", 50000 + its length otherwise.
const githubId = (login) => (login === 'octo' ? 12345 : 50000 + login.length);

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

const client = {
  client_id: CLIENT_ID,
  redirect_uris: [callback],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: CLIENT_AUTH,
  ...(CLIENT_AUTH === 'private_key_jwt'
    ? { jwks: JSON.parse(CLIENT_JWKS) }
    : { client_secret: CLIENT_SECRET }),
};

const provider = new Provider(issuer, {
  clients: [client],
  jwks: { keys: [signingJwk] },
  findAccount: (ctx, id) => account(id),
  scopes: ['openid', 'offline_access', 'read:user', 'user:email', 'ga4gh_passport_v1'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username', 'team', 'groups'],
    email: ['email', 'email_verified'],
    ga4gh_passport_v1: ['ga4gh_passport_v1'],
  },
  // A refresh token with every code (no offline_access needed), rotated at each use.
  issueRefreshToken: async (ctx, c) => c.grantTypeAllowed('refresh_token'),
  rotateRefreshToken: true,
  ...(ACCESS_TOKEN_TTL ? { ttl: { AccessToken: Number(ACCESS_TOKEN_TTL) } } : {}),
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

// A test can hold the token endpoint: after POST /test/hold, token requests wait until
// POST /test/release; GET /test/held answers once one is waiting (`?at_least=N`: N of them; no
// timing in the tests).
let hold = null;
let heldWaiters = [];
let heldCount = 0;
provider.use(async (ctx, next) => {
  if (ctx.path === '/token' && hold) {
    heldCount += 1;
    heldWaiters.splice(0).forEach((wake) => wake());
    await hold.promise;
  }
  await next();
});
function holdTokens () {
  let release;
  const promise = new Promise((resolve) => { release = resolve; });
  hold = { promise, release };
}
function releaseTokens () {
  if (hold) hold.release();
  hold = null;
}
// Resolves once at least `n` token requests are waiting.
const tokenHeld = (n = 1) => new Promise((wake) => {
  const check = () => (heldCount >= n ? wake() : heldWaiters.push(check));
  check();
});

let refreshes = 0;
const refreshTokens = [];
provider.on('grant.success', (ctx) => {
  if (ctx.oidc.params.grant_type === 'refresh_token') refreshes += 1;
});
provider.on('refresh_token.saved', (token) => refreshTokens.push(token));

const json = (res, status, body) => {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(body));
};

// GitHub's GET /user, for access tokens of this provider carrying read:user.
async function githubUser(req, res) {
  const [scheme, value] = (req.headers.authorization || '').split(' ');
  const token = scheme === 'Bearer' && value ? await provider.AccessToken.find(value) : undefined;
  if (!token || token.isExpired) return json(res, 401, { message: 'Bad credentials' });
  if (!token.scope?.split(' ').includes('read:user')) return json(res, 403, { message: 'scope' });
  const login = token.accountId;
  return json(res, 200, {
    id: githubId(login), login, name: `Upstream ${login}`, email: `${login}@corp.example`,
  });
}

// Discovery requests: counted, and held while `held` is an array.
let discoveries = 0;
let held = HOLD_DISCOVERY ? [] : null;

const oidc = provider.callback();
handler = (req, res) => {
  const path = req.url.split('?')[0];
  if (req.method === 'GET' && path === '/.well-known/openid-configuration') {
    discoveries += 1;
    if (!held) {
      oidc(req, res);
      return;
    }
    if (held.length === 0) console.log('discovery held');
    held.push(() => oidc(req, res));
  } else if (req.method === 'GET' && path === '/test/discoveries') {
    json(res, 200, { discoveries });
  } else if (req.method === 'POST' && path === '/test/release-discovery') {
    const waiting = held || [];
    held = null;
    waiting.forEach((answer) => answer());
    json(res, 200, { released: waiting.length });
  } else if (req.method === 'GET' && path === '/api/user') {
    githubUser(req, res).catch((e) => json(res, 500, { message: String(e) }));
  } else if (req.method === 'GET' && path === '/test/visa-jwks') {
    json(res, 200, { keys: [visaJwk] });
  } else if (req.method === 'GET' && path === '/test/visas') {
    json(res, 200, { visas: visas(new URL(req.url, issuer).searchParams.get('sub')) });
  } else if (req.method === 'POST' && path === '/test/extra-visa') {
    extraVisas.push(new URL(req.url, issuer).searchParams.get('visa'));
    json(res, 200, { extra: extraVisas.length });
  } else if (req.method === 'POST' && path === '/test/drop-visas') {
    visasDropped = true; json(res, 200, { dropped: true });
  } else if (req.method === 'POST' && path === '/test/drop-groups') {
    groupsDropped = true; json(res, 200, { dropped: true });
  } else if (req.method === 'POST' && path === '/test/hold') {
    heldCount = 0; holdTokens(); json(res, 200, { held: true });
  } else if (req.method === 'GET' && path === '/test/held') {
    const atLeast = Number(new URL(req.url, issuer).searchParams.get('at_least') || '1');
    tokenHeld(atLeast).then(() => json(res, 200, { held: heldCount }));
  } else if (req.method === 'POST' && path === '/test/release') {
    releaseTokens(); json(res, 200, { released: true });
  } else if (req.method === 'GET' && path === '/test/refreshes') {
    json(res, 200, { refreshes });
  } else if (req.method === 'POST' && path === '/test/revoke-refresh-tokens') {
    Promise.all(refreshTokens.splice(0).map((t) => t.destroy()))
      .then((done) => json(res, 200, { revoked: done.length }));
  } else {
    oidc(req, res);
  }
};
console.log('ready');
