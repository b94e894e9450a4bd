// Browser test: serves dist/page on a loopback port, opens each sample in the system's
// Chromium (never a downloaded browser) and checks that the verdict on screen is the one
// the sample's conformance case expects. Screenshots go to target/web-artifacts/.
import { createServer } from 'node:http';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const web = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(web, '..');
const pageDir = join(web, 'dist/page');
const artifacts = join(root, 'target/web-artifacts');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.json': 'application/json', '.wasm': 'application/wasm' };
const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
  const file = join(pageDir, path.endsWith('/') ? `${path}index.html` : path);
  if (!file.startsWith(pageDir)) return res.writeHead(403).end();
  try {
    const body = await readFile(file);
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const base = `http://127.0.0.1:${server.address().port}/`;

const userDataDir = mkdtempSync(join(tmpdir(), 'hsm-notary-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
mkdirSync(artifacts, { recursive: true });

// "Nothing leaves your browser": any request that is not to our loopback server fails the test.
const offsite = [];
await context.route('**/*', (route) => {
  const url = route.request().url();
  if (url.startsWith(base)) return route.continue();
  offsite.push(url);
  return route.abort();
});

const failures = [];
try {
  const page = await context.newPage();
  page.on('pageerror', (e) => failures.push(`page error: ${e.message}`));
  for (const sample of ['valid', 'tampered', 'untrusted']) {
    // What the conformance case expects, not what this test thinks the verdict should be.
    const caseName = JSON.parse(readFileSync(join(pageDir, 'samples', `${sample}.json`), 'utf8')).case;
    const expected = JSON.parse(readFileSync(join(root, 'tests/conformance/cases', caseName, 'case.json'), 'utf8')).expected;
    const want = expected.outcome === 'success' ? 'VERIFIED' : 'NOT VERIFIED';

    // A fresh load per sample (a bare hash change would keep the previous verdict around).
    await page.goto('about:blank');
    await page.goto(`${base}#sample=${sample}`);
    await page.waitForSelector('#result:not([hidden])', { timeout: 30_000 });
    const verdict = (await page.textContent('#verdict')).trim();
    let ok = verdict === want;
    let detail = '';
    if (ok && expected.failed_validation) {
      // The failing validation's row must show "failed" with action "enforce".
      const row = page.locator(`tr[data-check="${expected.failed_validation}"]`).first();
      const cells = (await row.locator('td').allTextContents()).map((t) => t.trim());
      ok = cells[1] === 'enforce' && cells[2] === 'failed';
      detail = ` (${expected.failed_validation}: ${cells.slice(1, 3).join(' ')})`;
    }
    const shot = join(artifacts, `page-${sample}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`${ok ? 'ok    ' : 'FAIL  '} ${sample} (${caseName}): "${verdict}", expected "${want}"${detail}; ${shot}`);
    if (!ok) failures.push(`${sample}: verdict "${verdict}"${detail}, expected "${want}" ${expected.failed_validation ?? ''}`);
  }
  if (offsite.length) failures.push(`requests left the page's origin: ${offsite.join(', ')}`);
} finally {
  await context.close();
  server.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
if (failures.length) {
  console.error(failures.join('\n'));
  process.exit(1);
}
console.log('browser test passed');
