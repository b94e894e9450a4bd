// The page: reads the inputs locally, calls the component's `verify`, and renders the
// outcome it returns. No network use besides loading this page, its wasm and samples.
import { verifier } from '../dist/verifier/verifier.js';
import { descriptorOf, guessMediaType, isoOf, verifyRequest } from '../lib/request.js';

const $ = (id) => document.getElementById(id);
const form = $('form');
let envelopeFile = null; // bytes of a picked envelope file (COSE is binary, so not pasted)

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
$('envelope-text').addEventListener('input', () => { envelopeFile = null; $('envelope-file').value = ''; });

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
  const envelope = envelopeFile ?? $('envelope-text').value.trim();
  if (!envelope.length) throw new Error('no signature envelope given');
  let descriptorJson;
  try { descriptorJson = JSON.parse($('descriptor').value); } catch (e) { throw new Error(`descriptor is not JSON: ${e.message}`); }
  const descriptor = descriptorOf(descriptorJson);
  const time = new Date($('time').value.trim() || Date.now());
  if (Number.isNaN(time.getTime())) throw new Error('verification time is not a date');
  return verifyRequest({
    policy: { kind: 'oci', content: $('policy').value },
    stores: await readStores(),
    target: { tag: 'oci', val: { reference: $('reference').value.trim() || `local/artifact@${descriptor.digest}`, descriptor } },
    signatures: [{ mediaType: $('envelope-media-type').value || guessMediaType(envelope), envelope }],
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
    details.append(el('h3', {}, `Signature ${s.index + 1}: ${s.mediaType}${tag}`));
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

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    render(verifier.verify(await request()));
  } catch (err) {
    renderError(err.message ?? String(err));
  }
});

async function loadSample(name) {
  const res = await fetch(`samples/${encodeURIComponent(name)}.json`);
  if (!res.ok) return renderError(`no sample ${name}`);
  const s = await res.json();
  $('result').hidden = true; // so that nobody reads the previous verdict meanwhile
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
  form.requestSubmit();
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
