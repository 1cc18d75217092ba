// What the browser tests share: Debian's chromium launched headless through playwright-core,
// trusting exactly one server key (its SPKI pin), and the end of a session — "Sign out of this
// browser" on the account page, then a silent request (prompt=none) that must come back with
// login_required.
import { chromium } from 'playwright-core'

export async function launch (spkiPin) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--ignore-certificate-errors-spki-list=${spkiPin}`],
  })
}

// On the account page: signs out, then checks that `authorize` (a URL object) with
// prompt=none comes back to the client with login_required.
export async function signOutAndCheck (page, authorize) {
  await page.click('text=Sign out of this browser')
  await page.waitForSelector('text=You are signed out')
  authorize.searchParams.set('prompt', 'none')
  await page.goto(authorize.href)
  const silent = new URL(page.url())
  if (silent.searchParams.get('error') !== 'login_required') throw new Error(`prompt=none after logout: ${silent}`)
  console.log('signed out')
}
