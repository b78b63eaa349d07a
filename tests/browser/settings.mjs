// Drives flowgate's settings pages in headless Chromium, one step at a time, as a studio owner
// would: the Rust test (tests/it/settings.rs) writes a command on stdin, this script does it in
// the same browser and answers one JSON line on stdout, then waits for the next command. The
// browser stays open between steps, so the test can use what a step made (a key's secret) with a
// real MCP client before the next step.
// Usage: node settings.mjs <gateway base URL> <screenshot directory>
// Commands (one per line, words separated by spaces):
//   sign-in <email> <password> [next]   sign in (a new browser context), answer where it landed
//   create <name> <resource=access>...  create a key (access: none, read or write), answer its
//                                       secret and id as the page showed them
//   rotate <key id>                     rotate on the page (through the confirmation), answer the
//                                       new secret
//   revoke <key id>                     revoke on the page (through the confirmation)
//   disconnect <app name…>              disconnect an app on Connected apps (confirmation too)
//   visit <path> [screenshot name]      open a page, answer its status, heading and text
//   audit <query string> [screenshot]   open the audit log with these filters, answer its rows
//   filter <field=value>...             filter the audit log with its form, open the first row
//   sign-out                            press Sign out
//   a11y                                check the open page with axe-core (WCAG 2.1 A and AA),
//                                       answer the violations
//   tab <n>                             press Tab n times, answer the focused element and
//                                       whether it shows a focus outline
//   quit
import { chromium } from 'playwright-core';
import * as readline from 'node:readline';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

// axe-core, the accessibility checker, evaluated in the page (which the CSP allows: it is the
// browser's debugging protocol, not a script tag).
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

const [base, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let context = null;
let page = null;
// What went wrong on the pages (see `fresh`): reported with every step.
const problems = [];

async function fresh() {
  if (context) await context.close();
  context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
  page = await context.newPage();
  // A page's own status is the step's to judge (a 403 can be the point); a stylesheet or script
  // that fails to load, a script error or a blocked inline script is a problem.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('response', (r) => {
    if (r.request().resourceType() !== 'document' && r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
  });
  page.on('requestfailed', (r) => problems.push(`failed: ${r.url()}`));
}

async function shot(name) {
  if (name) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
}

// Clicks and waits for the navigation it causes.
async function go(action) {
  await Promise.all([page.waitForLoadState('load'), action]);
  await page.waitForLoadState('load');
}

async function heading() {
  return (await page.textContent('h1'))?.trim();
}

// The records the audit log page shows, and its chart.
async function records() {
  return {
    rows: await page.$$eval('details.audit-entry summary', (xs) => xs.map((x) => x.innerText.replace(/\s+/g, ' ').trim())),
    chart: await page.$$eval('svg.chart', (xs) => xs.map((x) => x.textContent.replace(/\s+/g, ' ').trim().slice(0, 300))),
    summary: (await page.$$eval('.chart-summary', (xs) => xs.map((x) => x.textContent.trim())))[0] || null,
  };
}

// The open page's WCAG 2.1 A and AA violations, as axe-core finds them.
async function axe() {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, {
    runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
  }));
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5),
  }));
}

const steps = {
  async 'sign-in'(email, password, next) {
    await fresh();
    await page.goto(`${base}${next || '/settings'}`);
    const form = new URL(page.url()).pathname;
    await shot('sign-in');
    await page.fill('#email', email);
    await page.fill('#password', password);
    await go(page.click('button[type=submit]'));
    return { form, landed: new URL(page.url()).pathname, heading: await heading() };
  },

  async create(name, ...choices) {
    await page.goto(`${base}/settings/developer`);
    await page.fill('#key-name', name);
    for (const choice of choices) {
      const [resource, access] = choice.split('=');
      // The radio itself is visually hidden; a person clicks its label.
      await page.click(`label[for="access-${resource}-${access}"]`);
    }
    await shot('developer-create');
    await go(page.click('button:has-text("Create key")'));
    const secret = (await page.textContent('#secret'))?.trim();
    const warning = (await page.textContent('.warning'))?.trim();
    // The copy button (the pages' only script) puts the secret on the clipboard.
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    await page.click('button[data-copy=secret]');
    await page.waitForFunction(() => document.querySelector('button[data-copy]').textContent !== 'Copy');
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    await shot('key-secret');
    const a11y = await axe();
    await go(page.click('a:has-text("back to my keys")'));
    const row = await page.$eval('table.list tbody tr', (tr) => ({
      id: tr.id.replace(/^key-/, ''),
      cells: [...tr.querySelectorAll('td')].map((td) => td.innerText.trim()),
    }));
    await shot('developer');
    return { heading: await heading(), secret, copied, warning, row, a11y };
  },

  async rotate(id) {
    await page.goto(`${base}/settings/developer`);
    await go(page.click(`#key-${id} a:has-text("Rotate")`));
    const question = await heading();
    await go(page.click('button:has-text("Rotate the secret")'));
    return { question, heading: await heading(), secret: (await page.textContent('#secret'))?.trim() };
  },

  async revoke(id) {
    await page.goto(`${base}/settings/developer`);
    await go(page.click(`#key-${id} a:has-text("Revoke")`));
    const question = await heading();
    await shot('revoke-confirm');
    await go(page.click('button:has-text("Revoke the key")'));
    return {
      question,
      notice: (await page.textContent('.notice'))?.trim(),
      state: (await page.textContent(`#key-${id} .state`))?.trim(),
    };
  },

  async disconnect(...words) {
    const name = words.join(' ');
    await page.goto(`${base}/settings/connected-apps`);
    await shot('connected-apps');
    const row = page.locator('table.list tbody tr', { hasText: name }).first();
    const before = (await row.innerText()).trim();
    await go(row.locator('a:has-text("Disconnect")').click());
    const question = await heading();
    await go(page.click('button:has-text("Disconnect")'));
    const after = (await page.locator('table.list tbody tr', { hasText: name }).first().innerText()).trim();
    return { question, before, after, notice: (await page.textContent('.notice'))?.trim() };
  },

  async visit(path, name) {
    const response = await page.goto(`${base}${path}`);
    await shot(name);
    return {
      status: response.status(),
      path: new URL(page.url()).pathname,
      heading: await heading(),
      links: await page.$$eval('.settings-head nav a', (xs) => xs.map((x) => x.textContent.trim())),
      text: (await page.innerText('main')).slice(0, 4000),
    };
  },

  async audit(query, name) {
    const response = await page.goto(`${base}/settings/audit-log?${query || ''}`);
    await shot(name);
    return { status: response.status(), ...(await records()) };
  },

  // Filters the log as a person does: picks each `field=value` in the form, presses Filter,
  // and opens the first record.
  async filter(...choices) {
    await page.goto(`${base}/settings/audit-log`);
    for (const choice of choices) {
      const [field, value] = choice.split('=');
      const control = page.locator(`[name="${field}"]`);
      if (await control.evaluate((e) => e.tagName) === 'SELECT') await control.selectOption(value);
      else await control.fill(value);
    }
    await go(page.click('button:has-text("Filter")'));
    const found = await records();
    let opened = null;
    if (found.rows.length > 0) {
      await page.click('details.audit-entry summary');
      opened = (await page.innerText('details.audit-entry[open] .audit-more')).trim();
    }
    return { query: new URL(page.url()).search, ...found, opened };
  },

  async a11y() {
    return { path: new URL(page.url()).pathname, violations: await axe() };
  },

  async tab(n) {
    for (let i = 0; i < Number(n); i++) await page.keyboard.press('Tab');
    return await page.evaluate(() => {
      const el = document.activeElement;
      const style = getComputedStyle(el);
      return {
        tag: el.tagName.toLowerCase(),
        text: (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 60),
        outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0,
      };
    });
  },

  async 'sign-out'() {
    await go(page.click('button:has-text("Sign out")'));
    return { landed: new URL(page.url()).pathname, notice: (await page.textContent('.notice'))?.trim() };
  },
};

const lines = readline.createInterface({ input: process.stdin });
try {
  for await (const line of lines) {
    const [command, ...args] = line.trim().split(' ');
    if (!command) continue;
    if (command === 'quit') break;
    try {
      const result = await steps[command](...args);
      console.log(JSON.stringify({ ok: true, ...result, problems: problems.splice(0) }));
    } catch (e) {
      await shot('failure').catch(() => {});
      console.log(JSON.stringify({ ok: false, error: String(e), url: page?.url(), problems: problems.splice(0) }));
    }
  }
} finally {
  await browser.close();
}
