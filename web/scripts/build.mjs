// Build: transpile the verifier component with jco (ES module + core wasm + .d.ts) into
// dist/verifier/, then bundle the page with esbuild into dist/page/ and copy sample inputs
// from the conformance corpus next to it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { LAYOUT_SAMPLE, sampleOf } from '../lib/cases.mjs';

const web = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const root = resolve(web, '..');
const component = process.env.HSM_NOTARY_COMPONENT
  ? resolve(process.env.HSM_NOTARY_COMPONENT)
  : join(root, 'target/component/wasm32-unknown-unknown/release/notary_verifier_component.wasm');

if (!existsSync(component)) {
  console.error(`component not found: ${component}
Build it first with the Rust build (scripts/setup.sh / scripts/test.sh), or set HSM_NOTARY_COMPONENT.`);
  process.exit(1);
}

const dist = join(web, 'dist');
rmSync(dist, { recursive: true, force: true });

// The world imports nothing, so there is nothing for the WASI shim to rewrite; --no-wasi-shim
// keeps @bytecodealliance/preview2-shim out of the output (and out of the dependencies).
const jco = join(web, 'node_modules/@bytecodealliance/jco/src/jco.js');
const out = join(dist, 'verifier');
const run = spawnSync(process.execPath, [jco, 'transpile', component, '--name', 'verifier',
  '--no-wasi-shim', '-o', out], { stdio: 'inherit' });
if (run.status !== 0) process.exit(run.status ?? 1);

// dist/verifier/ is the npm package @hsm-notary/verifier: jco's module and declarations,
// the request helpers the page uses (typed by hand), a README, and a package.json whose
// version and license are the Rust workspace's.
const cargo = readFileSync(join(root, 'Cargo.toml'), 'utf8');
const workspaceField = (name) => {
  const m = cargo.match(new RegExp(`^${name}\\s*=\\s*"([^"]+)"`, 'm'));
  if (!m) throw new Error(`Cargo.toml: no workspace ${name}`);
  return m[1];
};
cpSync(join(web, 'lib/request.js'), join(out, 'request.js'));
for (const f of ['request.d.ts', 'README.md']) cpSync(join(web, 'package', f), join(out, f));
writeFileSync(join(out, 'package.json'), `${JSON.stringify({
  name: '@hsm-notary/verifier',
  version: workspaceField('version'),
  description: 'Verify Notary Project signatures (JWS, COSE, X.509, RFC 3161, trust policies) with the hsm-notary WebAssembly component, in Node and browsers',
  license: workspaceField('license'),
  type: 'module',
  main: './verifier.js',
  types: './verifier.d.ts',
  exports: {
    '.': { types: './verifier.d.ts', default: './verifier.js' },
    './request': { types: './request.d.ts', default: './request.js' },
    './package.json': './package.json',
  },
  files: ['verifier.js', 'verifier.d.ts', '*.core*.wasm', 'interfaces/', 'request.js', 'request.d.ts', 'README.md'],
  engines: { node: '>=18' },
  keywords: ['notary', 'notation', 'oci', 'signature', 'verification', 'webassembly', 'component'],
}, null, 2)}\n`);

// The page: one ES bundle. The core wasm files are fetched relative to the bundle's URL
// (jco emits `new URL('./verifier.core.wasm', import.meta.url)`), so they sit beside it.
const page = join(dist, 'page');
mkdirSync(page, { recursive: true });
await esbuild.build({
  entryPoints: [join(web, 'page/main.js')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  platform: 'browser',
  outfile: join(page, 'main.js'),
  // jco's Node.js fallback (reading the wasm with node:fs) is never taken in a browser.
  external: ['node:*'],
  logLevel: 'warning',
});
for (const f of readdirSync(out).filter((f) => f.endsWith('.wasm'))) cpSync(join(out, f), join(page, f));
for (const f of ['index.html', 'style.css']) cpSync(join(web, 'page', f), join(page, f));

// Samples, taken from the conformance corpus at build time so they are never stale copies.
mkdirSync(join(page, 'samples'), { recursive: true });
const samples = {
  valid: 'sig-x509-valid-strict',
  tampered: 'sig-sa-corrupt-signature-strict',
  untrusted: 'sig-x509-untrusted-root-strict',
};
for (const [name, caseName] of Object.entries(samples)) {
  writeFileSync(join(page, 'samples', `${name}.json`),
    JSON.stringify(sampleOf(join(root, 'tests/conformance/cases', caseName)), null, 1));
}
// An OCI image layout that notation signed, as a .tar (what `skopeo copy … oci-archive:`
// writes), with its case's trust policy, stores and `--scope`.
const layoutCase = join(root, 'tests/conformance/cases', LAYOUT_SAMPLE);
const layoutCaseJson = JSON.parse(readFileSync(join(layoutCase, 'case.json'), 'utf8'));
writeFileSync(join(page, 'samples', 'layout.json'), JSON.stringify({
  ...sampleOf(layoutCase), scope: layoutCaseJson.artifact.oci_layout_scope,
}, null, 1));
const tar = spawnSync('tar', ['-C', join(layoutCase, layoutCaseJson.artifact.oci_layout), '-cf',
  join(page, 'samples', 'layout.tar'), '--owner=0', '--group=0', '--format=ustar', '.'], { stdio: 'inherit' });
if (tar.status !== 0) process.exit(tar.status ?? 1);
// The digest of what was transpiled, to compare with `hsm-notary version` (same build).
const digest = `sha256:${createHash('sha256').update(readFileSync(component)).digest('hex')}`;
writeFileSync(join(dist, 'component.sha256'), `${digest}\n`);
console.log(`built ${out} and ${page} from ${component} (${digest})`);
