// Browser test: serves dist/page on a loopback port, opens each sample in the system's
// Chromium (never a downloaded browser) and checks that the verdict on screen is the one
// the sample's conformance case expects. Screenshots go to target/web-artifacts/.
import { createServer } from 'node:http';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { LAYOUT_SAMPLE } from '../lib/cases.mjs';

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

// OCI image layouts: the page's .tar sample, the same layout picked as a folder, and a
// tampered copy picked as a .tar, which must be refused with the blob named.
async function layoutChecks(page) {
  const problems = [];
  const caseDir = join(root, 'tests/conformance/cases', LAYOUT_SAMPLE);
  const theCase = JSON.parse(readFileSync(join(caseDir, 'case.json'), 'utf8'));
  const want = theCase.expected.outcome === 'success' ? 'VERIFIED' : 'NOT VERIFIED';
  const manifest = theCase.signatures[0].manifest_digest;
  const verdictOf = async (label) => {
    await page.waitForSelector('#result:not([hidden])', { timeout: 30_000 });
    const verdict = (await page.textContent('#verdict')).trim();
    const details = await page.textContent('#result');
    const shot = join(artifacts, `page-layout-${label}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    return { verdict, details, shot };
  };

  await page.goto('about:blank');
  await page.goto(base);
  await page.click('#layout-sample');
  let r = await verdictOf('tar-sample');
  let ok = r.verdict === want && r.details.includes(manifest);
  console.log(`${ok ? 'ok    ' : 'FAIL  '} layout .tar sample (${LAYOUT_SAMPLE}): "${r.verdict}", expected "${want}" from manifest ${manifest}; ${r.shot}`);
  if (!ok) problems.push(`layout .tar sample: "${r.verdict}" (manifest shown: ${r.details.includes(manifest)})`);

  // The same layout as a picked folder; policy, stores and scope stay from the sample.
  const scratch = mkdtempSync(join(tmpdir(), 'hsm-notary-layout-'));
  try {
    const folder = join(scratch, 'e2e-image');
    cpSync(join(caseDir, theCase.artifact.oci_layout), folder, { recursive: true });
    await page.evaluate(() => { document.getElementById('result').hidden = true; });
    await page.setInputFiles('#layout-folder', folder);
    await page.waitForFunction(() => document.getElementById('layout-info').textContent.startsWith('e2e-image:'));
    await page.click('#verify');
    r = await verdictOf('folder');
    ok = r.verdict === want && r.details.includes(manifest);
    console.log(`${ok ? 'ok    ' : 'FAIL  '} layout folder: "${r.verdict}", expected "${want}"; ${r.shot}`);
    if (!ok) problems.push(`layout folder: "${r.verdict}"`);

    // Tampered: one bit of the envelope blob flipped, then packed as skopeo would.
    const blob = join(folder, theCase.signatures[0].envelope_path.replace(`${theCase.artifact.oci_layout}/`, ''));
    chmodSync(blob, 0o644);
    const bytes = readFileSync(blob);
    bytes[bytes.length >> 1] ^= 1;
    writeFileSync(blob, bytes);
    const tar = join(scratch, 'tampered.tar');
    const run = spawnSync('tar', ['-C', folder, '-cf', tar, '.']);
    if (run.status !== 0) throw new Error(`tar failed: ${run.stderr}`);
    await page.setInputFiles('#layout-tar', tar);
    r = await verdictOf('tampered-tar');
    ok = r.verdict === 'INPUT ERROR' && /tampered\.tar: signature envelope blobs\/sha256\/[0-9a-f]+ does not match its digest/.test(r.details);
    console.log(`${ok ? 'ok    ' : 'FAIL  '} tampered layout .tar: "${r.verdict}": ${(await page.textContent('#summary')).trim()}; ${r.shot}`);
    if (!ok) problems.push(`tampered layout .tar: "${r.verdict}" ${r.details.slice(0, 200)}`);

    // Verify after the failed open must not check what the previous (valid) layout left.
    await page.click('#verify');
    await page.waitForSelector('#result:not([hidden])');
    const after = (await page.textContent('#verdict')).trim();
    const descriptor = await page.inputValue('#descriptor');
    ok = after === 'INPUT ERROR' && descriptor === '';
    console.log(`${ok ? 'ok    ' : 'FAIL  '} Verify after the tampered .tar: "${after}", descriptor ${descriptor ? 'left over' : 'cleared'}`);
    if (!ok) problems.push(`Verify after a failed layout: "${after}" with descriptor ${JSON.stringify(descriptor)}`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return problems;
}

// Revocation on the page: a layout signed here (hsm-notary, a local key) by a leaf whose
// certificate names a CRL, verified with the CRL picked as a file (good → verified), with
// none (status unknown → not verified) and with one listing the leaf (revoked). The page
// fetches nothing: the CDP is a closed loopback port.
function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', ...options });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

function revocationFixture(scratch) {
  const pki = join(scratch, 'pki');
  mkdirSync(pki);
  const at = { cwd: pki };
  run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', 'root.key', '-out', 'root.pem', '-subj', '/CN=page revocation root', '-days', '30',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], at);
  run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'leaf.key'], at);
  run('openssl', ['req', '-new', '-key', 'leaf.key', '-subj', '/CN=page revocation leaf', '-out', 'leaf.csr'], at);
  writeFileSync(join(pki, 'leaf.ext'), [
    'basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=codeSigning', 'crlDistributionPoints=URI:http://127.0.0.1:9/page-leaf.crl', ''].join('\n'));
  run('openssl', ['x509', '-req', '-in', 'leaf.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial',
    '-days', '10', '-extfile', 'leaf.ext', '-out', 'leaf.pem'], at);
  writeFileSync(join(pki, 'chain.pem'), readFileSync(join(pki, 'leaf.pem'), 'utf8') + readFileSync(join(pki, 'root.pem'), 'utf8'));
  writeFileSync(join(pki, 'index.txt'), '');
  writeFileSync(join(pki, 'crlnumber'), '01\n');
  writeFileSync(join(pki, 'ca.cnf'), ['[ca]', 'default_ca = ca', '[ca]', 'dir = .', 'database = index.txt',
    'crlnumber = crlnumber', 'certificate = root.pem', 'private_key = root.key', 'default_md = sha256',
    'default_crl_days = 1', 'crl_extensions = crl_ext', '[crl_ext]', 'authorityKeyIdentifier = keyid:always', ''].join('\n'));
  run('openssl', ['ca', '-config', 'ca.cnf', '-gencrl', '-out', 'good.crl'], at);
  run('openssl', ['ca', '-config', 'ca.cnf', '-revoke', 'leaf.pem', '-crl_reason', 'keyCompromise'], at);
  run('openssl', ['ca', '-config', 'ca.cnf', '-gencrl', '-out', 'revoked.crl'], at);

  // The conformance layout, signed again by the leaf (its notation signature stays and
  // fails authenticity here: the page must go on to ours).
  const caseDir = join(root, 'tests/conformance/cases', LAYOUT_SAMPLE);
  const theCase = JSON.parse(readFileSync(join(caseDir, 'case.json'), 'utf8'));
  const folder = join(scratch, 'revocation-image');
  cpSync(join(caseDir, theCase.artifact.oci_layout), folder, { recursive: true });
  run('chmod', ['-R', 'u+w', folder]);
  const config = join(scratch, 'config');
  const cli = join(root, 'target/release/hsm-notary');
  const env = { ...process.env, HSM_NOTARY_CACHE: join(scratch, 'cache') };
  run(cli, ['--config-dir', config, 'key', 'add', 'page', '--key-file', join(pki, 'leaf.key'), '--cert', join(pki, 'chain.pem'), '--default'], { env });
  run(cli, ['--config-dir', config, 'sign', '--oci-layout', `${folder}@${theCase.artifact.digest}`], { env });
  return { folder, pki };
}

async function revocationChecks(page) {
  const problems = [];
  const scratch = mkdtempSync(join(tmpdir(), 'hsm-notary-revocation-'));
  try {
    const { folder, pki } = revocationFixture(scratch);
    const policy = JSON.stringify({ version: '1.0', trustPolicies: [{ name: 'page', registryScopes: ['*'],
      signatureVerification: { level: 'strict' }, trustStores: ['ca:page'], trustedIdentities: ['*'] }] });
    for (const [label, crl, want, text] of [
      ['good-crl', 'good.crl', 'VERIFIED', 'not listed'],
      ['no-crl', null, 'NOT VERIFIED', 'revocation status is unknown'],
      ['revoked-crl', 'revoked.crl', 'NOT VERIFIED', 'is revoked'],
    ]) {
      await page.goto('about:blank');
      await page.goto(base);
      await page.fill('#policy', policy);
      for (const remove of await page.locator('#stores .remove-store').all()) await remove.click();
      await page.click('#add-store');
      await page.fill('#stores .store:last-child .store-name', 'page');
      await page.fill('#stores .store:last-child .store-pem', readFileSync(join(pki, 'root.pem'), 'utf8'));
      await page.setInputFiles('#layout-folder', folder);
      await page.waitForFunction(() => document.getElementById('layout-info').textContent.startsWith('revocation-image:'));
      await page.setInputFiles('#crl-files', crl ? [join(pki, crl)] : []);
      await page.evaluate(() => { document.getElementById('result').hidden = true; });
      await page.click('#verify');
      await page.waitForSelector('#result:not([hidden])', { timeout: 30_000 });
      const verdict = (await page.textContent('#verdict')).trim();
      const details = await page.textContent('#result');
      const shot = join(artifacts, `page-revocation-${label}.png`);
      await page.screenshot({ path: shot, fullPage: true });
      const ok = verdict === want && details.includes(text);
      console.log(`${ok ? 'ok    ' : 'FAIL  '} revocation ${label}: "${verdict}", expected "${want}" saying "${text}"; ${shot}`);
      if (!ok) problems.push(`revocation ${label}: "${verdict}" ${details.slice(0, 400)}`);
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  return problems;
}

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
  failures.push(...await layoutChecks(page));
  failures.push(...await revocationChecks(page));
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
