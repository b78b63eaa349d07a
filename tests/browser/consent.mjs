// Drives flowgate's sign-in and consent pages in headless Chromium, as a studio user would:
// sign in, lower one resource's choice by a step (drop one scope), approve. Prints what the
// page did as JSON: the redirect URL the page sent the browser to, the consent page's height
// in a 1366×768 laptop viewport, and the choices greyed out for the user's role.
// Usage: node consent.mjs <authorize-url> <screenshot.png> <scope-to-drop> [email] [password]
//   <scope-to-drop> `r:write` picks View for resource r (or None when only r:write was asked);
//   `r:read` picks None; `-` changes nothing.
import { chromium } from 'playwright-core';

const [authorizeUrl, screenshot, drop, email, password] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
  let redirected = null;
  // The client's loopback callback is not running: catch the redirect instead of loading it.
  await page.route('http://127.0.0.1:33333/**', async (route) => {
    redirected = route.request().url();
    await route.fulfill({ status: 200, contentType: 'text/html', body: '<p>connected</p>' });
  });
  await page.goto(authorizeUrl);
  if (process.env.SIGN_IN_SHOT) await page.screenshot({ path: process.env.SIGN_IN_SHOT });
  await page.fill('#email', email || 'owner@lotusflow.example');
  await page.fill('#password', password || 'lotus-owner-demo');
  await page.click('button[type=submit]');
  await page.waitForSelector('text=Allow');
  if (drop && drop !== '-') {
    const [resource, access] = drop.split(':');
    const name = `access.${resource}`;
    const lower = access === 'write' && await page.$(`input[name="${name}"][value="read"]`) ? 'read' : 'none';
    // The radio itself is visually hidden; a person clicks its label.
    await page.click(`label[for="access-${resource}-${lower}"]`);
    if (!await page.isChecked(`input[name="${name}"][value="${lower}"]`)) throw new Error(`${name}=${lower} not chosen`);
  }
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  const disabled = await page.$$eval('input[type=radio]:disabled', (xs) => xs.map((x) => `${x.name}=${x.value}`));
  await page.screenshot({ path: screenshot });
  await page.click('button[value=approve]');
  for (let i = 0; i < 100 && !redirected; i++) await page.waitForTimeout(50);
  console.log(JSON.stringify({ redirected, title: await page.title(), height, viewport: 768, disabled }));
} finally {
  await browser.close();
}
