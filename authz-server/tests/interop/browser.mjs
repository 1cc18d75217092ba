// A real browser (Debian's chromium driven by playwright-core) on the authz-server's pages:
// sign in on /authorize for a third-party client, allow on the consent page, land on the
// client's redirect with a code; then approve a device code on the verification page.
// Screenshots of each page go to SCREENSHOTS. Prints one line per step.
//
// Environment: ISSUER, PASSWORD (alice_wire), SCREENSHOTS (a directory), DEVICE_URL (the
// verification_uri_complete of a pending device authorization), SPKI_PIN (the base64 SHA-256 of
// the server certificate's key, the one key chromium is told to trust), CALLBACK_PORT (where the
// test listens as the client's redirect target).
import { launch, signOutAndCheck } from './chromium.mjs'

const issuer = process.env.ISSUER
const shots = process.env.SCREENSHOTS
const browser = await launch(process.env.SPKI_PIN)
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: false })
  const page = await context.newPage()
  // The client's redirect target: a loopback listener of the test (RFC 8252, any port).
  const redirectUri = `http://127.0.0.1:${process.env.CALLBACK_PORT}/callback`

  const authorize = new URL('/authorize', issuer)
  for (const [k, v] of Object.entries({
    response_type: 'code', client_id: 'demo-webapp', redirect_uri: redirectUri,
    scope: 'openid profile', state: 'browser-state', code_challenge_method: 'S256',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
  })) authorize.searchParams.set(k, v)
  await page.goto(authorize.href)
  await page.screenshot({ path: `${shots}/1-login.png` })
  await page.fill('input[name=username]', 'alice_wire')
  await page.fill('input[name=password]', process.env.PASSWORD)
  await page.click('button[type=submit]')
  await page.waitForSelector('text=Allow access?')
  await page.screenshot({ path: `${shots}/2-consent.png` })
  console.log('consent page shown')
  await Promise.all([page.waitForURL(`${redirectUri}**`), page.click('button[value=allow]')])
  const callback = new URL(page.url())
  if (!callback.searchParams.get('code') || callback.searchParams.get('state') !== 'browser-state') {
    throw new Error(`callback ${callback}`)
  }
  console.log('code received')

  // The browser is signed in now (its session): the device page asks for no password.
  await page.goto(process.env.DEVICE_URL)
  await page.waitForSelector('text=Signed in as')
  if (await page.locator('input[name=password]').count() !== 0) throw new Error('password asked in a session')
  await page.screenshot({ path: `${shots}/3-device.png` })
  await page.click('button[value=approve]')
  await page.waitForSelector('text=connected')
  await page.screenshot({ path: `${shots}/4-device-approved.png` })
  console.log('device approved')

  // The account page lists this browser's session; signing out there ends it, and a silent
  // request (prompt=none) then comes back with login_required.
  await page.goto(new URL('/account', issuer).href)
  await page.waitForSelector('text=(this browser)')
  await page.screenshot({ path: `${shots}/5-account.png` })
  await signOutAndCheck(page, authorize)
} finally {
  await browser.close()
}
