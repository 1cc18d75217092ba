// openid-client v6 (an independent, OpenID-certified Relying Party library) against the
// authz-server, used as its quick start shows, with the scope OIDC libraries ask for by default:
// openid-client itself names none (its quick start leaves `scope` to the application), so this
// uses `openid email profile`, Authlib's documented default.
//
//   1. The first-party Wire app: authorization code + PKCE + nonce, DPoP with an Ed25519 key (the
//      library signs it as `alg: "Ed25519"`, RFC 9864), its own use_dpop_nonce retries, the ID
//      token and /userinfo claims (no `null` member), and a refresh.
//   2. The demo third-party app: the same defaults through the consent page, bearer tokens.
//   3. An authorization error (a scope the app is not registered for): the library reports the
//      server's error, which it does only when the error response carries `iss` (RFC 9207).
//
// The login and consent forms are submitted as a browser would. Prints one line per step, and
// runs every step even when one fails (so a run shows each failure); exits non-zero if any did.
//
// Environment: ISSUER; LOGIN_HANDLE, LOGIN_PASSWORD and LOGIN_EMAIL (a user without a team whose
// operator-recorded, unverified email is LOGIN_EMAIL); NODE_EXTRA_CA_CERTS for the dev TLS root.
import * as client from 'openid-client'

const issuer = new URL(process.env.ISSUER)
const redirectUri = 'http://127.0.0.1:4711/callback'
const scope = 'openid email profile'
const handle = process.env.LOGIN_HANDLE
const password = process.env.LOGIN_PASSWORD

// Every request goes through the platform fetch; the DPoP proofs' `alg` is noted on the way.
const dpopAlgs = new Set()
function noteDPoPAlg(url, options) {
  const proof = new Headers(options.headers).get('dpop')
  if (proof) dpopAlgs.add(JSON.parse(Buffer.from(proof.split('.')[0], 'base64url')).alg)
  return fetch(url, options)
}

function assertNoNull(what, claims) {
  const empty = Object.entries(claims).filter(([, v]) => v === null).map(([k]) => k)
  if (empty.length) throw new Error(`${what}: null claims ${empty.join(', ')} in ${JSON.stringify(claims)}`)
}

// The "browser": post the login form (the request's parameters and the credentials), then
// allow the consent page if one comes; returns the redirect back to the client.
async function signIn(authorizationUrl) {
  const form = new URLSearchParams(authorizationUrl.searchParams)
  form.set('username', handle)
  form.set('password', password)
  const endpoint = new URL(authorizationUrl.pathname, authorizationUrl.origin)
  let response = await fetch(endpoint, { method: 'POST', body: form, redirect: 'manual' })
  if (response.status === 200) {
    const page = await response.text()
    const ticket = /name="ticket" value="([^"]+)"/.exec(page)?.[1]
    if (!ticket) throw new Error(`sign-in: no consent form in ${page}`)
    console.log('consent page shown')
    response = await fetch(new URL('/authorize/consent', issuer), {
      method: 'POST',
      body: new URLSearchParams({ ticket, action: 'allow' }),
      redirect: 'manual',
    })
  }
  if (response.status !== 303) throw new Error(`sign-in: HTTP ${response.status}`)
  return new URL(response.headers.get('location'))
}

async function authorizationRequest(config, requestScope) {
  const pkceCodeVerifier = client.randomPKCECodeVerifier()
  const expectedState = client.randomState()
  const expectedNonce = client.randomNonce()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: requestScope,
    code_challenge: await client.calculatePKCECodeChallenge(pkceCodeVerifier),
    code_challenge_method: 'S256',
    state: expectedState,
    nonce: expectedNonce,
  })
  return { url, checks: { pkceCodeVerifier, expectedState, expectedNonce, idTokenExpected: true } }
}

async function step(name, run) {
  try {
    await run()
  } catch (err) {
    console.log(`FAILED ${name}:`, err)
    process.exitCode = 1
  }
}

// 1. The first-party app with an Ed25519 DPoP key.
const wireapp = await client.discovery(issuer, 'wireapp', undefined, client.None(), {
  [client.customFetch]: noteDPoPAlg,
})
console.log('discovery ok', wireapp.serverMetadata().issuer)
const DPoP = client.getDPoPHandle(wireapp, await client.randomDPoPKeyPair('Ed25519'))
await step('first-party sign-in', async () => {
  const { url, checks } = await authorizationRequest(wireapp, scope)
  const tokens = await client.authorizationCodeGrant(wireapp, await signIn(url), checks, undefined, { DPoP })
  if (tokens.token_type !== 'dpop') throw new Error(`token_type ${tokens.token_type}`)
  if (tokens.scope !== scope) throw new Error(`granted scope ${tokens.scope}`)
  const claims = tokens.claims()
  assertNoNull('ID token', claims)
  if (claims.email !== process.env.LOGIN_EMAIL || claims.email_verified !== false || 'team' in claims) {
    throw new Error(`ID token claims ${JSON.stringify(claims)}`)
  }
  console.log('authorization code ok', tokens.token_type, 'email', claims.email)
  const userinfo = await client.fetchUserInfo(wireapp, tokens.access_token, claims.sub, { DPoP })
  assertNoNull('userinfo', userinfo)
  if (userinfo.email !== process.env.LOGIN_EMAIL || 'team' in userinfo) {
    throw new Error(`userinfo ${JSON.stringify(userinfo)}`)
  }
  console.log('userinfo ok', userinfo.preferred_username)
  const refreshed = await client.refreshTokenGrant(wireapp, tokens.refresh_token, undefined, { DPoP })
  if (refreshed.token_type !== 'dpop' || !refreshed.refresh_token) throw new Error('refresh')
  console.log('refresh ok', refreshed.token_type)
})
console.log('dpop alg', [...dpopAlgs].join(' '))

// 2. The demo third-party app, same defaults, through the consent page.
const webapp = await client.discovery(issuer, 'demo-webapp', undefined, client.None())
await step('third-party sign-in', async () => {
  const { url, checks } = await authorizationRequest(webapp, scope)
  const tokens = await client.authorizationCodeGrant(webapp, await signIn(url), checks)
  const claims = tokens.claims()
  assertNoNull('ID token', claims)
  if (tokens.scope !== scope || claims.email !== process.env.LOGIN_EMAIL) {
    throw new Error(`third-party tokens ${JSON.stringify({ scope: tokens.scope, claims })}`)
  }
  console.log('third-party authorization code ok', tokens.token_type,
    'refresh_token', Boolean(tokens.refresh_token))
})

// 3. An error response: the library surfaces the server's error.
await step('error response', async () => {
  const { url, checks } = await authorizationRequest(webapp, 'openid wire_devices')
  const callback = await signIn(url)
  try {
    await client.authorizationCodeGrant(webapp, callback, checks)
    throw new Error(`no error from ${callback}`)
  } catch (err) {
    if (!(err instanceof client.AuthorizationResponseError)) throw err
    console.log('error response ok', err.error)
  }
})
