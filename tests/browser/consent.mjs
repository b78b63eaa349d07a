// Drives flowgate's sign-in and consent pages in headless Chromium, as a studio owner would:
// sign in, untick one permission, approve. Prints the redirect URL the page sent the browser to.
// Usage: node consent.mjs <authorize-url> <screenshot.png> <scope-to-untick>
import { chromium } from 'playwright-core';

const [authorizeUrl, screenshot, untick] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 800, height: 1100 } });
  let redirected = null;
  // The client's loopback callback is not running: catch the redirect instead of loading it.
  await page.route('http://127.0.0.1:33333/**', async (route) => {
    redirected = route.request().url();
    await route.fulfill({ status: 200, contentType: 'text/html', body: '<p>connected</p>' });
  });
  await page.goto(authorizeUrl);
  await page.fill('#email', 'owner@lotusflow.example');
  await page.fill('#password', 'lotus-owner-demo');
  await page.click('button[type=submit]');
  await page.waitForSelector('text=Allow');
  await page.uncheck(`input[value="${untick}"]`);
  await page.screenshot({ path: screenshot, fullPage: true });
  await page.click('button[value=approve]');
  for (let i = 0; i < 100 && !redirected; i++) await page.waitForTimeout(50);
  console.log(JSON.stringify({ redirected, title: await page.title() }));
} finally {
  await browser.close();
}
