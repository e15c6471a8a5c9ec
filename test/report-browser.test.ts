/**
 * Opens generated pages in headless Debian Chromium (playwright-core, /usr/bin/chromium): every <img> loads, no
 * console errors, no dialog from hostile names, screenshots saved to a temp folder. Skipped when Chromium is not
 * installed, unless CI is set (then missing Chromium fails: CI installs the Debian package 'chromium').
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildDemoDatabase, XSS } from '../framework/report/demo-fixtures.js';
import { reportAll } from '../framework/report/generate.js';
import { openResultsDb } from '../framework/report/load.js';
import { sanitize } from '../framework/report/slug.js';

/** REPORT_CHROMIUM overrides the path (to try the skip / CI-failure paths). */
const CHROMIUM = process.env['REPORT_CHROMIUM'] ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
const skip = !available && !process.env['CI'] ? `${CHROMIUM} is missing (apt-get install -y chromium); set CI=1 to make this a failure` : false;

let dir: string;
let out: string;
let shots: string;
let browser: Browser | null = null;

before(async () => {
  if (skip) return;
  assert.ok(available, `${CHROMIUM} is missing but CI is set: install the Debian package 'chromium'`);
  dir = mkdtempSync(join(tmpdir(), 'report-browser-'));
  out = join(dir, 'reports');
  shots = mkdtempSync(join(tmpdir(), 'report-screenshots-'));
  const dbPath = join(dir, 'results.db');
  buildDemoDatabase(dbPath);
  const db = openResultsDb(dbPath);
  try {
    await reportAll(db, { dbPath, outDir: out });
  } finally {
    db.close();
  }
  // playwright gives every launch a fresh, empty user-data-dir of its own (it refuses --user-data-dir in args).
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Visit {
  page: Page;
  consoleErrors: string[];
  dialogs: string[];
  requests: string[];
}

async function visit(relPath: string, width = 1280): Promise<Visit> {
  const page = await browser!.newPage({ viewport: { width, height: 900 } });
  const v: Visit = { page, consoleErrors: [], dialogs: [], requests: [] };
  page.on('console', (m) => {
    if (m.type() === 'error') v.consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => v.consoleErrors.push(e.message));
  page.on('dialog', (d) => {
    v.dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('request', (r) => v.requests.push(r.url()));
  await page.goto(pathToFileURL(join(out, relPath)).href, { waitUntil: 'load' });
  return v;
}

async function checkImages(page: Page): Promise<number> {
  const images = await page.evaluate(() =>
    Array.from(document.images).map((img) => ({ src: img.getAttribute('src'), complete: img.complete, width: img.naturalWidth })),
  );
  for (const img of images) assert.ok(img.complete && img.width > 0, `image did not load: ${img.src}`);
  return images.length;
}

async function screenshot(page: Page, name: string): Promise<string> {
  const file = join(shots, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  assert.ok(statSync(file).size > 1000);
  return file;
}

test('experiment page: every image loads, no console errors, only local files', { skip }, async (t) => {
  const v = await visit('ablation-a/index.html');
  const n = await checkImages(v.page);
  assert.ok(n >= 10, `expected the plots and per-job charts, got ${n} images`);
  assert.deepEqual(v.consoleErrors, []);
  assert.deepEqual(v.requests.filter((u) => !u.startsWith('file:')), []);
  assert.equal(await v.page.locator('h1').textContent(), 'ablation-a');
  assert.ok(await v.page.locator('tr.baseline').first().isVisible());
  t.diagnostic(`screenshot: ${await screenshot(v.page, 'ablation-a')}`);
  await v.page.close();
});

test('grid page and index page render without errors', { skip }, async (t) => {
  for (const [path, name] of [['ablation-b/index.html', 'ablation-b'], ['index.html', 'index']] as const) {
    const v = await visit(path);
    await checkImages(v.page);
    assert.deepEqual(v.consoleErrors, [], path);
    t.diagnostic(`screenshot: ${await screenshot(v.page, name)}`);
    await v.page.close();
  }
});

test('a hostile experiment name is shown as text and runs nothing', { skip }, async (t) => {
  const v = await visit(`${sanitize(XSS)}/index.html`);
  await v.page.waitForTimeout(200);
  assert.deepEqual(v.dialogs, []);
  assert.equal(await v.page.locator('script').count(), 0);
  const h1 = v.page.locator('h1');
  assert.equal(await h1.textContent(), XSS);
  assert.ok(await h1.isVisible());
  assert.ok(await v.page.getByText(`description ${XSS}`).first().isVisible());
  await checkImages(v.page);
  assert.deepEqual(v.consoleErrors, []);
  t.diagnostic(`screenshot: ${await screenshot(v.page, 'hostile')}`);
  await v.page.close();

  const index = await visit('index.html');
  assert.deepEqual(index.dialogs, []);
  assert.ok(await index.page.getByRole('link', { name: XSS }).isVisible());
  await index.page.close();
});

/** Tables whose parent is not a sideways-scrolling box (they would widen the page when wide). */
async function unboxedTables(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll('table'))
      .filter((t) => getComputedStyle(t.parentElement!).overflowX !== 'auto')
      .map((t) => t.className || t.querySelector('th')?.textContent || '?'),
  );
}

test('at 1400 px wide tables scroll inside their own box and the page does not widen', { skip }, async (t) => {
  const v = await visit('ablation-a-budget/index.html', 1400);
  await checkImages(v.page);
  assert.deepEqual(v.consoleErrors, []);
  const layout = await v.page.evaluate(() => ({
    page: document.documentElement.scrollWidth,
    boxes: Array.from(document.querySelectorAll('table.results')).map((table) => {
      const box = table.parentElement!;
      return {
        boxClass: box.className,
        overflowX: getComputedStyle(box).overflowX,
        boxWidth: box.clientWidth,
        tableWidth: table.scrollWidth,
        scrollable: box.scrollWidth > box.clientWidth,
        headers: Array.from(table.querySelectorAll('thead th')).map((th) => th.textContent),
      };
    }),
  }));
  assert.ok(layout.page <= 1400, `page is ${layout.page} px wide`);
  assert.deepEqual(await unboxedTables(v.page), [], 'every table sits in a scroll box');
  // The fixture's table is wider than the page: it must scroll in its box, not push the page.
  assert.equal(layout.boxes.length, 2, 'one table per budget block');
  for (const b of layout.boxes) {
    assert.equal(b.boxClass, 'scroll');
    assert.equal(b.overflowX, 'auto');
    assert.ok(b.boxWidth <= 1400 && b.tableWidth > b.boxWidth && b.scrollable, JSON.stringify(b));
  }
  // No column that means nothing in its block: no wall-clock columns under the equal-time budget.
  assert.ok(layout.boxes[0]!.headers.includes('time (rel.)'));
  assert.ok(!layout.boxes[1]!.headers.includes('time (rel.)') && !layout.boxes[1]!.headers.includes('train time (s)'), layout.boxes[1]!.headers.join(', '));
  const box = v.page.locator('div.scroll:has(table.results)').first();
  await box.evaluate((el) => el.scrollBy(300, 0));
  assert.ok((await box.evaluate((el) => el.scrollLeft)) > 0, 'the table box scrolls sideways');
  assert.equal(await v.page.evaluate(() => window.scrollX), 0);
  t.diagnostic(`screenshot: ${await screenshot(v.page, 'ablation-a-budget-1400')}`);
  await v.page.close();

  const index = await visit('index.html', 1400);
  assert.ok((await index.page.evaluate(() => document.documentElement.scrollWidth)) <= 1400);
  assert.deepEqual(await unboxedTables(index.page), []);
  assert.equal(await index.page.locator('h2').first().textContent(), 'Claims scorecard');
  assert.equal(await index.page.locator('table.claims tbody tr').count(), 9);
  t.diagnostic(`screenshot: ${await screenshot(index.page, 'index-1400')}`);
  await index.page.close();
});
