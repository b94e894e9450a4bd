// The page: reads the inputs locally, calls the component's `verify`, and renders the
// outcome it returns. No network use besides loading this page, its wasm and samples.
import { verifier } from '../dist/verifier/verifier.js';
import { descriptorOf, guessMediaType, isoOf, verifyRequest } from '../lib/request.js';
import { openLayout, pickedFiles, readTar } from '../lib/layout.js';

const $ = (id) => document.getElementById(id);
const form = $('form');
let envelopeFile = null; // bytes of a picked envelope file (COSE is binary, so not pasted)
let layout = null; // an opened OCI image layout (lib/layout.js)
let layoutState = null; // see "OCI image layouts" below

async function fileBytes(input) {
  return Promise.all([...input.files].map(async (f) => ({ name: f.name, content: new Uint8Array(await f.arrayBuffer()) })));
}

// Text files picked into a text box just fill it.
for (const [fileId, textId] of [['descriptor-file', 'descriptor'], ['policy-file', 'policy']]) {
  $(fileId).addEventListener('change', async (e) => { $(textId).value = await e.target.files[0].text(); });
}
$('envelope-file').addEventListener('change', async (e) => {
  const [f] = await fileBytes(e.target);
  envelopeFile = f?.content ?? null;
  $('envelope-text').value = '';
  $('envelope-text').placeholder = f ? `using file ${f.name} (${f.content.length} bytes)` : '';
});
$('envelope-text').addEventListener('input', () => { envelopeFile = null; $('envelope-file').value = ''; leaveLayout(); });
$('envelope-file').addEventListener('change', () => leaveLayout());

// --- OCI image layouts -------------------------------------------------------------------
// `layoutState`: null (envelope and descriptor typed by hand), or the layout's artifact in
// use: { pending } while it is read, { error } if that failed, { signatures, more }. The
// artifact inputs are cleared the moment a layout or artifact is chosen, and a read that a
// newer choice superseded is dropped, so a verdict is always for the artifact on screen.
let generation = 0;

/** Envelope or descriptor typed by hand again: the layout's signatures are not used. */
function leaveLayout() {
  if (!layoutState) return;
  generation++;
  layoutState = null;
  $('envelope-text').placeholder = '';
  $('layout-info').textContent = layout ? `${layout.name}: not used (an envelope was given by hand)` : '';
}

function clearArtifact() {
  $('result').hidden = true;
  $('descriptor').value = '';
  $('reference').value = '';
  envelopeFile = null;
  $('envelope-file').value = '';
  $('envelope-text').value = '';
  $('envelope-text').placeholder = '';
  layoutState = { pending: true };
}

function layoutReference() {
  const target = layout?.targets[$('layout-target').selectedIndex];
  if (target && layoutState?.signatures) $('reference').value = `${$('layout-scope').value.trim() || 'local/artifact'}@${target.descriptor.digest}`;
}

/** A layout or artifact read failed: the error is the state (Verify repeats it). */
function layoutFailed(mine, err) {
  if (mine !== generation) return false;
  layoutState = { error: err.message ?? String(err) };
  $('layout-info').textContent = '';
  renderError(layoutState.error);
  return false;
}

async function selectTarget() {
  const mine = ++generation;
  const target = layout.targets[$('layout-target').selectedIndex];
  clearArtifact();
  $('layout-info').textContent = `${layout.name}: reading the signatures of ${target.descriptor.digest}…`;
  try {
    const found = await layout.signatures(target.descriptor.digest);
    if (mine !== generation) return false;
    layoutState = found;
  } catch (err) {
    return layoutFailed(mine, err);
  }
  $('descriptor').value = JSON.stringify(target.descriptor, null, 2);
  layoutReference();
  const n = layoutState.signatures.length;
  $('envelope-text').placeholder = `using ${n} signature(s) from ${layout.name}`;
  $('layout-info').textContent = `${layout.name}: ${layout.targets.length} artifact(s); `
    + `${n} signature(s) for ${target.tag ? `${target.tag} = ` : ''}${target.descriptor.digest}`
    + (layoutState.more ? ` (more exist; the first ${n} are verified, as --max-signatures does)` : '');
  return true;
}

/** Opens a layout from `load()` (path -> bytes or File) and selects its first artifact. */
async function useLayout(load, name) {
  const mine = ++generation;
  clearArtifact();
  layout = null;
  $('layout-target').replaceChildren();
  $('layout-target').disabled = true;
  $('layout-info').textContent = `${name}: reading…`;
  try {
    const opened = await openLayout(await load(), name);
    if (mine !== generation) return false;
    if (!opened.targets.length) throw new Error(`${name}: index.json lists no artifact besides signatures`);
    layout = opened;
    $('layout-target').replaceChildren(...opened.targets.map((t) =>
      el('option', {}, `${t.tag ?? '(untagged)'}  ${t.descriptor.digest}  ${t.descriptor.mediaType}`)));
    $('layout-target').disabled = false;
    if (!$('layout-scope').value.trim()) $('layout-scope').value = `local/${name.replace(/\.tar$/, '').replace(/[^a-z0-9._/-]+/gi, '-').toLowerCase()}`;
  } catch (err) {
    return layoutFailed(mine, err);
  }
  return selectTarget();
}

const tarFiles = (file) => () => readTar(file);

$('layout-tar').addEventListener('change', async (e) => {
  const [file] = e.target.files;
  if (file) await useLayout(tarFiles(file), file.name);
});
$('layout-folder').addEventListener('change', async (e) => {
  const files = pickedFiles(e.target.files);
  const name = [...files.keys()][0]?.split('/')[0] ?? 'folder';
  await useLayout(async () => files, name);
});
$('layout-target').addEventListener('change', () => selectTarget());
$('layout-scope').addEventListener('input', layoutReference);
$('layout-sample').addEventListener('click', async () => {
  await loadSample('layout', { submit: false });
  const res = await fetch('samples/layout.tar');
  if (!res.ok) return renderError('no layout sample');
  if (await useLayout(tarFiles(await res.blob()), 'layout-sample.tar')) form.requestSubmit();
});

// Drag and drop: a folder (walked through the entries API) or a .tar file.
async function entryFiles(entry, prefix, files) {
  if (entry.isFile) {
    files.set(prefix + entry.name, await new Promise((ok, fail) => entry.file(ok, fail)));
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
      if (!batch.length) break;
      for (const child of batch) await entryFiles(child, `${prefix}${entry.name}/`, files);
    }
  }
  return files;
}
const zone = $('drop-zone');
zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
zone.addEventListener('dragleave', () => zone.classList.remove('over'));
zone.addEventListener('drop', async (e) => {
  e.preventDefault();
  zone.classList.remove('over');
  const entry = e.dataTransfer.items?.[0]?.webkitGetAsEntry?.();
  if (entry?.isDirectory) return useLayout(() => entryFiles(entry, '', new Map()), entry.name);
  const file = e.dataTransfer.files[0];
  if (file) await useLayout(tarFiles(file), file.name);
});

function addStore({ storeType = 'ca', name = 'my-store', pem = '' } = {}) {
  const row = $('store-template').content.firstElementChild.cloneNode(true);
  row.querySelector('.store-type').value = storeType;
  row.querySelector('.store-name').value = name;
  row.querySelector('.store-pem').value = pem;
  row.querySelector('.remove-store').addEventListener('click', () => row.remove());
  $('stores').append(row);
}
$('add-store').addEventListener('click', () => addStore());

function setNow() { $('time').value = new Date().toISOString().replace(/\.\d+Z$/, 'Z'); }
$('time-now').addEventListener('click', setNow);

async function readStores() {
  const stores = [];
  for (const row of $('stores').querySelectorAll('.store')) {
    const files = await fileBytes(row.querySelector('.store-files'));
    const pem = row.querySelector('.store-pem').value.trim();
    if (pem) files.push({ name: 'pasted.pem', content: pem });
    stores.push({ storeType: row.querySelector('.store-type').value, name: row.querySelector('.store-name').value.trim(), files });
  }
  return stores;
}

async function request() {
  if (layoutState?.pending) throw new Error('the OCI layout is still being read');
  if (layoutState?.error) throw new Error(layoutState.error);
  let signatures = layoutState?.signatures;
  if (!signatures) {
    const envelope = envelopeFile ?? $('envelope-text').value.trim();
    if (!envelope.length) throw new Error('no signature envelope given (pick or paste one, or open an OCI layout)');
    signatures = [{ mediaType: $('envelope-media-type').value || guessMediaType(envelope), envelope }];
  }
  let descriptorJson;
  try { descriptorJson = JSON.parse($('descriptor').value); } catch (e) { throw new Error(`descriptor is not JSON: ${e.message}`); }
  const descriptor = descriptorOf(descriptorJson);
  const time = new Date($('time').value.trim() || Date.now());
  if (Number.isNaN(time.getTime())) throw new Error('verification time is not a date');
  return verifyRequest({
    policy: { kind: 'oci', content: $('policy').value },
    stores: await readStores(),
    target: { tag: 'oci', val: { reference: $('reference').value.trim() || `local/artifact@${descriptor.digest}`, descriptor } },
    signatures,
    time,
  });
}

// Small DOM helpers; all text goes through textContent (inputs are untrusted).
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.append(...children.map((c) => (c instanceof Node ? c : String(c ?? ''))));
  return e;
}
function table(headers, rows) {
  return el('table', {}, el('tr', {}, ...headers.map((h) => el('th', {}, h))), ...rows);
}

const CHECKS = ['integrity', 'authenticity', 'authentic-timestamp', 'expiry', 'revocation'];
const camel = (name) => name.replace(/-(\w)/g, (_, c) => c.toUpperCase());

const VERDICTS = { verified: 'VERIFIED', failed: 'NOT VERIFIED', skipped: 'SKIPPED (policy level "skip": not verified)' };

function render(outcome) {
  const verdict = $('verdict');
  verdict.textContent = VERDICTS[outcome.decision];
  verdict.className = outcome.decision;
  const p = outcome.policy;
  $('summary').textContent = [
    p ? `Trust policy statement "${p.statement}", level ${p.level}.` : '',
    outcome.failure ? `Failure (${outcome.failure.kind}): ${outcome.failure.message}` : '',
  ].join(' ');
  const details = $('details');
  details.replaceChildren();
  for (const s of outcome.signatures) {
    const tag = outcome.verifiedIndex === s.index ? ' (verified)' : '';
    const manifest = s.manifestDigest ? `, signature manifest ${s.manifestDigest}` : '';
    details.append(el('h3', {}, `Signature ${s.index + 1}: ${s.mediaType}${manifest}${tag}`));
    // One row per validation; those the component did not reach (it stops at an enforced
    // failure) show the policy's action and "not reached".
    const rows = CHECKS.map((check) => {
      const r = s.results.find((x) => x.check === check);
      const action = r?.action ?? (p ? p.actions[camel(check)] : '');
      return el('tr', { class: r?.status ?? 'not-reached', 'data-check': check }, el('td', {}, check), el('td', {}, action),
        el('td', { class: 'status' }, r?.status ?? 'not reached'), el('td', { class: 'mono' }, r?.message ?? ''));
    });
    details.append(table(['Validation', 'Action', 'Result', 'Message'], rows));
    if (s.failure) details.append(el('p', {}, `This signature failed (${s.failure.kind}): ${s.failure.message}`));
    const env = s.envelope;
    if (!env) { details.append(el('p', {}, 'The envelope could not be parsed.')); continue; }
    const leaf = env.certificates[0];
    details.append(el('h4', {}, 'Signer'), el('p', { class: 'mono', id: 'signer' }, leaf?.subject ?? 'no certificate'));
    details.append(table(['Signed attribute', 'Value'], [
      ['signature algorithm', env.signatureAlgorithm], ['signing scheme', env.signingScheme],
      ['signing time', isoOf(env.signingTime)], ['expiry', isoOf(env.expiry)],
      ['signing agent', env.signingAgent ?? ''],
      ['timestamp', env.timestamp ? (env.timestamp.tag === 'range' ? `${isoOf(env.timestamp.val.lower)} … ${isoOf(env.timestamp.val.upper)}` : env.timestamp.val) : 'none'],
    ].map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', { class: 'mono' }, v)))));
    details.append(el('h4', {}, 'Certificate chain (leaf first)'));
    details.append(table(['Subject', 'Issuer', 'Valid', 'Key', 'SHA-256'], env.certificates.map((c) =>
      el('tr', {}, el('td', { class: 'mono' }, c.subject), el('td', { class: 'mono' }, c.issuer),
        el('td', { class: 'mono' }, `${isoOf(c.notBefore)} … ${isoOf(c.notAfter)}`), el('td', {}, `${c.key}${c.isCa ? ', CA' : ''}`),
        el('td', { class: 'mono' }, c.sha256)))));
    const d = env.payload;
    details.append(el('h4', {}, 'Signed descriptor (payload targetArtifact)'));
    details.append(table(['Field', 'Value'], [['mediaType', d.mediaType], ['digest', d.digest], ['size', String(d.size)],
      ...(d.artifactType ? [['artifactType', d.artifactType]] : [])]
      .map(([k, v]) => el('tr', {}, el('td', {}, k), el('td', { class: 'mono' }, v)))));
    details.append(el('h4', {}, 'User metadata (payload annotations)'));
    details.append(d.annotations.length
      ? table(['Key', 'Value'], d.annotations.map(([k, v]) => el('tr', {}, el('td', { class: 'mono' }, k), el('td', { class: 'mono' }, v))))
      : el('p', {}, 'none'));
  }
  $('result').hidden = false;
}

function renderError(message) {
  $('verdict').textContent = 'INPUT ERROR';
  $('verdict').className = 'error';
  $('summary').textContent = message;
  $('details').replaceChildren();
  $('result').hidden = false;
}

// The CRLs and OCSP responses the user picked, offered at every location the component
// asks for (`revocationNeeds`); it keeps only those the certificate's issuer signed.
async function withRevocation(req) {
  const crls = (await fileBytes($('crl-files'))).map((f) => pemCrl(f.content));
  const responses = (await fileBytes($('ocsp-files'))).map((f) => f.content);
  if (!crls.length && !responses.length) return req;
  const evidence = [];
  for (let round = 0; round < 4; round++) {
    const needs = verifier.revocationNeeds({ ...req, revocationEvidence: evidence });
    const before = evidence.length;
    for (const need of needs) {
      for (const url of need.urls) {
        if (evidence.some((e) => e.val.url === url)) continue;
        const offered = need.method === 'ocsp' ? responses : crls;
        for (const content of offered) evidence.push({ tag: need.method === 'ocsp' ? 'ocsp-response' : 'crl', val: { url, content } });
        if (!offered.length) evidence.push({ tag: 'unavailable', val: { url, reason: 'no file was given for it on this page' } });
      }
    }
    if (evidence.length === before) break;
  }
  return { ...req, revocationEvidence: evidence };
}

// A PEM `X509 CRL` block's DER, or the bytes as they are.
function pemCrl(content) {
  const text = new TextDecoder().decode(content);
  const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(text);
  if (!m) return content;
  return Uint8Array.from(atob(m[1].replace(/\s+/g, '')), (c) => c.charCodeAt(0));
}

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    render(verifier.verify(await withRevocation(await request())));
  } catch (err) {
    renderError(err.message ?? String(err));
  }
});

async function loadSample(name, { submit = true } = {}) {
  const res = await fetch(`samples/${encodeURIComponent(name)}.json`);
  if (!res.ok) return renderError(`no sample ${name}`);
  const s = await res.json();
  $('result').hidden = true; // so that nobody reads the previous verdict meanwhile
  generation++;
  layout = null;
  layoutState = null;
  $('layout-target').replaceChildren();
  $('layout-target').disabled = true;
  $('layout-info').textContent = '';
  $('layout-scope').value = s.scope ?? '';
  $('envelope-text').placeholder = '';
  envelopeFile = null;
  $('envelope-file').value = '';
  $('envelope-text').value = s.envelope;
  $('envelope-media-type').value = s.envelopeMediaType;
  $('reference').value = s.reference;
  $('descriptor').value = JSON.stringify(s.descriptor, null, 2);
  $('policy').value = s.policy;
  $('stores').replaceChildren();
  s.stores.forEach(addStore);
  setNow();
  $('sample-info').textContent = `conformance case ${s.case}: ${s.description}`;
  if (submit) form.requestSubmit();
}
for (const b of document.querySelectorAll('[data-sample]')) {
  b.addEventListener('click', () => { location.hash = `sample=${b.dataset.sample}`; });
}

// `#sample=valid` (or tampered, untrusted) pre-fills a sample and verifies it.
function fromHash() {
  const m = /^#sample=([\w-]+)$/.exec(location.hash);
  if (m) loadSample(m[1]);
}
window.addEventListener('hashchange', fromHash);
setNow();
addStore();
fromHash();
document.body.dataset.ready = 'true';
