// A real browser (Debian's chromium driven by playwright-core) through a login at an upstream
// identity provider: our /authorize login page → "Sign in with Corp <IdP>" → the upstream's
// own login and consent pages (node-oidc-provider) → back to the client with a code; then the
// account page: link a second upstream through its pages, unlink the first, refused to unlink
// the last; sign out; a silent request (prompt=none) then comes back with login_required.
// Screenshots of each page go to SCREENSHOTS. Prints one line per step.
//
// Environment: ISSUER (ours), AUTHORIZE_URL (a fresh authorization request of the demo
// client), SCREENSHOTS, SPKI_PIN (the base64 SHA-256 of our certificate's key, the one key
// chromium is told to trust), CALLBACK_PORT (the client's redirect target, a loopback listener
// of the test), LOGIN and PARTNER_LOGIN (the user's names at the two upstreams).
import { launch, signOutAndCheck } from './chromium.mjs'

const issuer = process.env.ISSUER
const shots = process.env.SCREENSHOTS
const redirectUri = `http://127.0.0.1:${process.env.CALLBACK_PORT}/callback`
const browser = await launch(process.env.SPKI_PIN)

// The upstream's development login page (any password), then its consent page.
async function logInAtUpstream (page, login, shot) {
  await page.waitForSelector('input[name=login]')
  await page.screenshot({ path: `${shots}/${shot}-upstream-login.png` })
  await page.fill('input[name=login]', login)
  await page.fill('input[name=password]', 'any')
  await page.click('button[type=submit]')
  await page.waitForSelector('button[type=submit]')
  await page.click('button[type=submit]')
}

try {
  const context = await browser.newContext({ ignoreHTTPSErrors: false })
  const page = await context.newPage()
  const authorize = new URL(process.env.AUTHORIZE_URL)
  await page.goto(authorize.href)
  await page.screenshot({ path: `${shots}/f1-login.png` })
  await page.click('text=Sign in with Corp <IdP>')
  await Promise.all([
    page.waitForURL(`${redirectUri}**`),
    logInAtUpstream(page, process.env.LOGIN, 'f2'),
  ])
  const callback = new URL(page.url())
  if (!callback.searchParams.get('code')) throw new Error(`callback ${callback}`)
  console.log('upstream login')

  await page.goto(new URL('/account', issuer).href)
  await page.waitForSelector('text=Corp <IdP> (linked')
  await page.waitForSelector('text=through Corp <IdP>, last used')
  await page.screenshot({ path: `${shots}/f3-account.png` })
  await page.click('text=Link Partner')
  await logInAtUpstream(page, process.env.PARTNER_LOGIN, 'f4')
  await page.waitForSelector('text=Partner (linked')
  await page.screenshot({ path: `${shots}/f5-linked.png` })
  console.log('linked')

  // Unlink the first upstream (its form is the first Unlink button), then the last is refused.
  await page.locator('form[action="/account/unlink"] button').first().click()
  await page.waitForSelector('text=Your account')
  if (await page.locator('text=Corp <IdP> (linked').count() !== 0) throw new Error('still linked')
  await page.locator('form[action="/account/unlink"] button').first().click()
  await page.waitForSelector('text=the last way to sign in')
  await page.screenshot({ path: `${shots}/f6-last-way-in.png` })
  console.log('unlinked')

  await signOutAndCheck(page, authorize)
} finally {
  await browser.close()
}
