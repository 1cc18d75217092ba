// oauth4webapi (an independent OAuth 2 / OIDC client) against the authz-server: discovery,
// authorization code + PKCE + DPoP with the use_dpop_nonce retry, a DPoP-protected /userinfo
// call, refresh, client credentials with DPoP, and the device grant (whose ID token the library
// validates). The login form is submitted as a browser would. Prints one line per step; exits
// non-zero on the first failure.
//
// Environment: ISSUER, PASSWORD (alice_wire), SERVICE_SECRET (demo-service), and
// NODE_EXTRA_CA_CERTS for the dev TLS root.
import * as oauth from 'oauth4webapi'

const issuer = new URL(process.env.ISSUER)
const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer))
console.log('discovery ok', as.token_endpoint)

const client = { client_id: 'wireapp' }
const redirectUri = 'http://127.0.0.1:4711/callback'
const codeVerifier = oauth.generateRandomCodeVerifier()
const codeChallenge = await oauth.calculatePKCECodeChallenge(codeVerifier)
const state = oauth.generateRandomState()
const nonce = oauth.generateRandomNonce()
const DPoP = oauth.DPoP(client, await oauth.generateKeyPair('ES256'))

// The "browser": submit the login form of the authorization endpoint.
const form = new URLSearchParams({
  response_type: 'code', client_id: client.client_id, redirect_uri: redirectUri,
  scope: 'openid profile', state, nonce, code_challenge: codeChallenge,
  code_challenge_method: 'S256', username: 'alice_wire', password: process.env.PASSWORD,
})
const login = await fetch(as.authorization_endpoint, { method: 'POST', body: form, redirect: 'manual' })
if (login.status !== 303) throw new Error(`login: HTTP ${login.status}`)
const callback = new URL(login.headers.get('location'))
const params = oauth.validateAuthResponse(as, client, callback, state)

// Token request; the server may ask for a nonce first.
async function withNonceRetry(request, process) {
  try {
    return await process(await request())
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    console.log('use_dpop_nonce, retrying')
    return await process(await request())
  }
}
const tokens = await withNonceRetry(
  () => oauth.authorizationCodeGrantRequest(as, client, oauth.None(), params, redirectUri, codeVerifier, { DPoP }),
  (r) => oauth.processAuthorizationCodeResponse(as, client, r, { expectedNonce: nonce, requireIdToken: true }),
)
if (tokens.token_type.toLowerCase() !== 'dpop') throw new Error(`token_type ${tokens.token_type}`)
console.log('authorization code ok', tokens.token_type, 'id_token', Boolean(tokens.id_token))

const userinfo = await withNonceRetry(
  () => oauth.protectedResourceRequest(tokens.access_token, 'GET', new URL(as.userinfo_endpoint), undefined, undefined, { DPoP }),
  async (r) => {
    if (!r.ok) throw new Error(`userinfo: HTTP ${r.status}`)
    return r.json()
  },
)
if (userinfo.preferred_username !== 'alice_wire@wire.com') throw new Error(`userinfo ${JSON.stringify(userinfo)}`)
console.log('userinfo ok', userinfo.preferred_username)

const refreshed = await withNonceRetry(
  () => oauth.refreshTokenGrantRequest(as, client, oauth.None(), tokens.refresh_token, { DPoP }),
  (r) => oauth.processRefreshTokenResponse(as, client, r),
)
if (!refreshed.refresh_token || refreshed.refresh_token === tokens.refresh_token) throw new Error('no rotation')
console.log('refresh ok', refreshed.token_type)

const service = { client_id: 'demo-service' }
const serviceDPoP = oauth.DPoP(service, await oauth.generateKeyPair('ES256'))
const cc = await withNonceRetry(
  () => oauth.clientCredentialsGrantRequest(as, service, oauth.ClientSecretBasic(process.env.SERVICE_SECRET), { scope: 'api' }, { DPoP: serviceDPoP }),
  (r) => oauth.processClientCredentialsResponse(as, service, r),
)
if (cc.token_type.toLowerCase() !== 'dpop') throw new Error(`client credentials token_type ${cc.token_type}`)
console.log('client credentials ok', cc.token_type)

// Device authorization grant: the device polls; the user approves on the verification page
// after the first poll (submitted here as a browser would); the next poll after the interval
// gets DPoP-bound tokens.
const device = await oauth.processDeviceAuthorizationResponse(as, client,
  await oauth.deviceAuthorizationRequest(as, client, oauth.None(), { scope: 'openid' }))
let deviceTokens
for (let attempt = 0; attempt < 10 && !deviceTokens; attempt++) {
  try {
    deviceTokens = await withNonceRetry(
      () => oauth.deviceCodeGrantRequest(as, client, oauth.None(), device.device_code, { DPoP }),
      (r) => oauth.processDeviceCodeResponse(as, client, r),
    )
  } catch (err) {
    if (!(err instanceof oauth.ResponseBodyError) || err.error !== 'authorization_pending') throw err
    if (attempt === 0) {
      const approve = await fetch(new URL('/device', issuer), {
        method: 'POST',
        body: new URLSearchParams({ user_code: device.user_code, username: 'alice_wire', password: process.env.PASSWORD, action: 'approve' }),
      })
      if (approve.status !== 200) throw new Error(`approve: HTTP ${approve.status}`)
      console.log('device authorization_pending, approved')
    }
    // The polling interval RFC 8628 §3.5 asks for.
    await new Promise((resolve) => setTimeout(resolve, device.interval * 1000))
  }
}
if (!deviceTokens || deviceTokens.token_type.toLowerCase() !== 'dpop') throw new Error('device grant')
// `openid` was asked: an ID token, checked by the library (iss, aud, exp, iat, azp), with no
// nonce since the device flow sends none.
const deviceClaims = oauth.getValidatedIdTokenClaims(deviceTokens)
if (!deviceClaims || 'nonce' in deviceClaims) throw new Error(`device ID token ${JSON.stringify(deviceClaims)}`)
console.log('device grant ok', deviceTokens.token_type, 'id_token', Boolean(deviceTokens.id_token))
