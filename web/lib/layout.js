// OCI image layouts in the page: a picked folder or a `.tar` (`docker save` since Docker
// 25, `skopeo copy … oci-archive:`), read into memory, then the targets in `index.json`
// and the Notary signature manifests whose `subject` is a target, found the way
// `hsm-notary verify --oci-layout` finds them (host/src/layout.rs): every manifest of
// `index.json`, and those of the image indexes it lists (the `sha256-<hex>` referrers tag
// schema). Every blob read is checked against its descriptor's digest and size, so a
// layout whose files were swapped is an error, not a verdict. No Node APIs: the page and
// the Node test share it; `sha` is the digest function of the caller (WebCrypto or node:crypto).

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const NOTARY = 'application/vnd.cncf.notary.signature';
const REF_NAME = 'org.opencontainers.image.ref.name';
const MAX_MANIFEST = 4 * 1024 * 1024;
const MAX_ENVELOPE = 4 * 1024 * 1024;

const text = new TextDecoder();

/**
 * The regular files of a tar archive (ustar, with pax `path` and GNU long names), as a
 * Map from path (no leading `./`) to bytes. Hand-written because npm's tar readers are
 * built on Node streams, and a page needs only this much.
 */
export function readTar(bytes) {
  const files = new Map();
  let offset = 0;
  let longName = null;
  let ended = false;
  const field = (start, length) => {
    const raw = bytes.subarray(offset + start, offset + start + length);
    const end = raw.indexOf(0);
    return text.decode(end < 0 ? raw : raw.subarray(0, end));
  };
  while (offset + 512 <= bytes.length) {
    if (bytes.subarray(offset, offset + 512).every((b) => b === 0)) { ended = true; break; } // end of archive
    const sizeField = field(124, 12).trim();
    if (!/^[0-7]*$/.test(sizeField)) throw new Error(`tar: bad size field at byte ${offset}`);
    const size = sizeField ? parseInt(sizeField, 8) : 0;
    const type = String.fromCharCode(bytes[offset + 156] || 0x30);
    const magic = field(257, 6);
    let name = field(0, 100);
    if (magic.startsWith('ustar')) {
      const prefix = field(345, 155);
      if (prefix) name = `${prefix}/${name}`;
    }
    const start = offset + 512;
    if (start + size > bytes.length) throw new Error(`tar: ${name} is truncated (${size} bytes declared)`);
    const data = bytes.subarray(start, start + size);
    offset = start + Math.ceil(size / 512) * 512;
    if (type === 'L') { longName = text.decode(data).replace(/\0+$/, ''); continue; }
    if (type === 'x') {
      // pax records: "<len> key=value\n"
      for (const m of text.decode(data).matchAll(/\d+ ([^=]+)=([^\n]*)\n/g)) if (m[1] === 'path') longName = m[2];
      continue;
    }
    if (type === 'g') continue;
    if (longName !== null) { name = longName; longName = null; }
    if (type === '0' || type === '\0' || type === '7') files.set(name.replace(/^(\.\/)+/, ''), data);
  }
  if (!ended && offset !== bytes.length) throw new Error(`tar: truncated: the archive ends at byte ${bytes.length}, inside a member`);
  return files;
}

/**
 * Files of a folder pick (`webkitdirectory`) by path, unread: only the blobs needed are
 * read later, so an image's layers are never loaded.
 */
export function pickedFiles(fileList) {
  const files = new Map();
  for (const f of fileList) files.set(f.webkitRelativePath || f.name, f);
  return files;
}

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** A digest function over WebCrypto (browsers, and Node ≥ 20 as `globalThis.crypto`). */
export async function webCryptoDigest(algorithm, bytes) {
  const name = { sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' }[algorithm];
  if (!name) throw new Error(`unsupported digest algorithm ${algorithm}`);
  return hex(await crypto.subtle.digest(name, bytes));
}

/**
 * An OCI image layout from its files (path -> bytes, or a File/Blob read on demand).
 * `name` is shown to the user (folder or file name). The layout may sit at the top of the
 * files or in one folder (a picked folder, or a tar made of a folder).
 */
export async function openLayout(files, name, digest = webCryptoDigest) {
  const marker = [...files.keys()].filter((p) => p === 'oci-layout' || p.endsWith('/oci-layout'))
    .sort((a, b) => a.length - b.length)[0];
  if (marker === undefined) {
    const hint = files.has('manifest.json') ? ' (this looks like a docker save archive from before Docker 25, which is not an OCI layout; use skopeo copy … oci-archive: or a newer docker)' : '';
    throw new Error(`${name}: not an OCI image layout: no oci-layout file${hint}`);
  }
  const root = marker.slice(0, marker.length - 'oci-layout'.length);
  const sizeOf = (path) => { const v = files.get(root + path); return v === undefined ? undefined : (v.length ?? v.size); };
  const file = async (path, limit) => {
    const v = files.get(root + path);
    if (v === undefined) return undefined;
    if ((v.length ?? v.size) > limit) throw new Error(`${name}: ${path} is over the limit of ${limit} bytes`);
    return v instanceof Uint8Array ? v : new Uint8Array(await v.arrayBuffer());
  };
  let layoutVersion;
  try { layoutVersion = JSON.parse(text.decode(await file('oci-layout', 4096))).imageLayoutVersion; } catch { /* below */ }
  if (layoutVersion !== '1.0.0') throw new Error(`${name}: oci-layout does not say imageLayoutVersion 1.0.0`);
  const indexBytes = await file('index.json', MAX_MANIFEST);
  if (!indexBytes) throw new Error(`${name}: no index.json`);
  const index = parseJson(indexBytes, `${name}: index.json`);
  if (!Array.isArray(index.manifests)) throw new Error(`${name}: index.json has no manifests list`);

  async function blob(descriptor, limit, what) {
    const m = /^(sha256|sha384|sha512):([0-9a-f]+)$/.exec(String(descriptor.digest));
    if (!m) throw new Error(`${name}: ${what} has an unsupported digest ${JSON.stringify(descriptor.digest)}`);
    const path = `blobs/${m[1]}/${m[2]}`;
    const size = sizeOf(path);
    if (size === undefined) throw new Error(`${name}: ${what} ${descriptor.digest} is missing (${path})`);
    if (size !== Number(descriptor.size)) throw new Error(`${name}: ${what} ${path} is ${size} bytes, its descriptor says ${descriptor.size}`);
    const bytes = await file(path, limit);
    const actual = await digest(m[1], bytes);
    if (actual !== m[2]) throw new Error(`${name}: ${what} ${path} does not match its digest (it hashes to ${m[1]}:${actual})`);
    return bytes;
  }

  // index.json's descriptors, then those of the image indexes it lists, without repeats.
  const seen = new Set();
  const all = [];
  for (const d of index.manifests) {
    if (seen.has(d.digest)) continue;
    seen.add(d.digest);
    all.push(d);
  }
  for (const d of [...all]) {
    if (d.mediaType !== INDEX) continue;
    const nested = parseJson(await blob(d, MAX_MANIFEST, 'index'), `${name}: index ${d.digest}`);
    for (const n of nested.manifests ?? []) if (!seen.has(n.digest)) { seen.add(n.digest); all.push(n); }
  }

  const manifests = new Map(); // digest -> parsed manifest (image manifests only)
  for (const d of all) {
    if (d.mediaType !== MANIFEST) continue;
    manifests.set(d.digest, parseJson(await blob(d, MAX_MANIFEST, 'manifest'), `${name}: manifest ${d.digest}`));
  }
  const isSignature = (m) => m.artifactType === NOTARY || m.config?.mediaType === NOTARY;

  // Targets: what index.json lists that is not itself a signature or a referrers tag index.
  const targets = index.manifests
    .filter((d) => !(d.mediaType === MANIFEST && isSignature(manifests.get(d.digest) ?? {})))
    .filter((d) => !/^sha256-[0-9a-f]{64}$/.test(d.annotations?.[REF_NAME] ?? ''))
    .map((d) => ({ descriptor: { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.artifactType ? { artifactType: d.artifactType } : {}) }, tag: d.annotations?.[REF_NAME] }));

  /** The signatures whose subject is `targetDigest`, in discovery order, envelopes read. */
  async function signatures(targetDigest) {
    const out = [];
    for (const [manifestDigest, m] of manifests) {
      if (m.subject?.digest !== targetDigest || !isSignature(m)) continue;
      if (!Array.isArray(m.layers) || m.layers.length !== 1) {
        throw new Error(`${name}: signature manifest ${manifestDigest} must have exactly one layer, found ${m.layers?.length ?? 0}`);
      }
      const [layer] = m.layers;
      out.push({ mediaType: layer.mediaType, envelope: await blob(layer, MAX_ENVELOPE, 'signature envelope'), manifestDigest });
    }
    return out;
  }
  return { name, targets, signatures };
}

function parseJson(bytes, what) {
  try { return JSON.parse(text.decode(bytes)); } catch (e) { throw new Error(`${what} is not JSON: ${e.message}`); }
}
