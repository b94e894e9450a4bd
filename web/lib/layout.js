// OCI image layouts in the page: a picked folder, or a `.tar` of one. Signed layouts come
// from `notation sign --oci-layout` (or hsm-notary's), or `oras cp -r --to-oci-layout`;
// `docker save` (Docker 25 and later) and `skopeo copy … oci-archive:` write the same
// format but carry no signatures. Files are read lazily: only `oci-layout`, `index.json`,
// manifests and envelopes, never layers. The artifacts are those `index.json` lists; the
// Notary signature manifests whose `subject` is the chosen one are found the way
// `hsm-notary verify --oci-layout` finds them (host/src/layout.rs). Every blob read is
// checked against its descriptor's digest and size, so a layout whose files were swapped is
// an error, not a verdict. No Node APIs: the page and the Node test share it.

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';
const NOTARY = 'application/vnd.cncf.notary.signature';
const EMPTY = 'application/vnd.oci.empty.v1+json';
const REF_NAME = 'org.opencontainers.image.ref.name';
// The CLI's limits (host/src/oci.rs): manifests 4 MiB, envelopes 32 MiB, 10000 manifests.
const MAX_MANIFEST = 4 * 1024 * 1024;
const MAX_ENVELOPE = 32 * 1024 * 1024;
const MAX_MANIFESTS = 10_000;
/** notation's default `--max-signatures`. */
export const DEFAULT_MAX_SIGNATURES = 100;

const text = new TextDecoder();
const ascii = (bytes) => String.fromCharCode(...bytes);

/**
 * The members of a tar archive (ustar, pax and GNU long names, hard links), as a Map from
 * path (no leading `./`) to their bytes — or, for a File/Blob, to lazy slices of it, so a
 * large image archive is never read whole. Hand-written because npm's tar readers are
 * built on Node streams, and a page needs only this much.
 */
export async function readTar(source) {
  const blob = source instanceof Uint8Array ? null : source;
  const total = blob ? blob.size : source.length;
  const read = async (start, end) => (blob ? new Uint8Array(await blob.slice(start, end).arrayBuffer()) : source.subarray(start, end));
  const member = (start, end) => (blob ? blob.slice(start, end) : source.subarray(start, end));
  const files = new Map();
  let offset = 0;
  let pax = {};
  let longName = null;
  let longLink = null;
  let ended = false;
  while (offset + 512 <= total) {
    const header = await read(offset, offset + 512);
    if (header.every((b) => b === 0)) { ended = true; break; } // end of archive
    const field = (start, length) => {
      const raw = header.subarray(start, start + length);
      const end = raw.indexOf(0);
      return text.decode(end < 0 ? raw : raw.subarray(0, end));
    };
    const octal = (start, length) => {
      const value = field(start, length).trim();
      if (!/^[0-7]*$/.test(value)) throw new Error(`tar: bad number in the header at byte ${offset}`);
      return value ? parseInt(value, 8) : 0;
    };
    // The checksum catches what is not a tar at all (a .tar.gz, say) at its first byte.
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i];
    const recorded = field(148, 8).trim();
    if (!/^[0-7]+$/.test(recorded) || parseInt(recorded, 8) !== sum) {
      throw new Error(`tar: bad header checksum at byte ${offset} (not a tar archive? compressed archives such as .tar.gz are not read)`);
    }
    const size = octal(124, 12);
    const type = String.fromCharCode(header[156] || 0x30);
    // POSIX ustar has a name prefix; GNU's "ustar  " keeps other fields there.
    const posix = ascii(header.subarray(257, 263)) === 'ustar\0' && ascii(header.subarray(263, 265)) === '00';
    let name = field(0, 100);
    if (posix && field(345, 155)) name = `${field(345, 155)}/${name}`;
    const start = offset + 512;
    if (start + size > total) throw new Error(`tar: ${name} is truncated (${size} bytes declared)`);
    offset = start + Math.ceil(size / 512) * 512;
    if (type === 'L') { longName = text.decode(await read(start, start + size)).replace(/\0+$/, ''); continue; }
    if (type === 'x') { pax = parsePax(await read(start, start + size)); continue; }
    if (type === 'K') { longLink = text.decode(await read(start, start + size)).replace(/\0+$/, ''); continue; }
    if (type === 'g') continue;
    name = (pax.path ?? longName ?? name).replace(/^(\.\/)+/, '');
    const linkName = (pax.linkpath ?? longLink ?? field(157, 100)).replace(/^(\.\/)+/, '');
    pax = {};
    longName = null;
    longLink = null;
    if (type === '0' || type === '\0' || type === '7') files.set(name, member(start, start + size));
    else if (type === '1' && files.has(linkName)) files.set(name, files.get(linkName));
  }
  if (!ended && offset !== total) throw new Error(`tar: truncated: the archive ends at byte ${total}, inside a member`);
  return files;
}

/** pax extended header records, `<length> <key>=<value>\n`, split by their lengths. */
function parsePax(bytes) {
  const records = {};
  let pos = 0;
  while (pos < bytes.length) {
    const space = bytes.indexOf(0x20, pos);
    const length = space < 0 ? NaN : Number(ascii(bytes.subarray(pos, space)));
    if (!Number.isInteger(length) || length <= space - pos || pos + length > bytes.length || bytes[pos + length - 1] !== 0x0a) {
      throw new Error('tar: malformed pax extended header');
    }
    const record = text.decode(bytes.subarray(space + 1, pos + length - 1));
    const eq = record.indexOf('=');
    if (eq > 0) records[record.slice(0, eq)] = record.slice(eq + 1);
    pos += length;
  }
  return records;
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
  const name = { sha256: 'SHA-256', sha512: 'SHA-512' }[algorithm];
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
    const m = /^(?:(sha256):([0-9a-f]{64})|(sha512):([0-9a-f]{128}))$/.exec(String(descriptor.digest));
    if (!m) throw new Error(`${name}: ${what} has an unsupported digest ${JSON.stringify(descriptor.digest)}`);
    const [algorithm, hexDigest] = m[1] ? [m[1], m[2]] : [m[3], m[4]];
    const path = `blobs/${algorithm}/${hexDigest}`;
    const size = sizeOf(path);
    if (size === undefined) throw new Error(`${name}: ${what} ${descriptor.digest} is missing (${path})`);
    if (size !== Number(descriptor.size)) throw new Error(`${name}: ${what} ${path} is ${size} bytes, its descriptor says ${descriptor.size}`);
    const bytes = await file(path, limit);
    const actual = await digest(algorithm, bytes);
    if (actual !== hexDigest) throw new Error(`${name}: ${what} ${path} does not match its digest (it hashes to ${algorithm}:${actual})`);
    return bytes;
  }

  // Every descriptor of the layout, breadth first through image indexes (the `sha256-<hex>`
  // referrers tag index among them), as the CLI walks it (host/src/layout.rs): a nested
  // index that cannot be read is passed over, which can only hide signatures.
  let walked = null;
  async function allDescriptors() {
    if (walked) return walked;
    const out = [];
    const seen = new Set();
    const queue = [...index.manifests];
    while (queue.length) {
      const d = queue.shift();
      if (seen.has(d.digest)) continue;
      seen.add(d.digest);
      if (out.length >= MAX_MANIFESTS) throw new Error(`${name}: more than ${MAX_MANIFESTS} manifests`);
      if (d.mediaType === INDEX) {
        try {
          const nested = JSON.parse(text.decode(await blob(d, MAX_MANIFEST, 'index')));
          if (Array.isArray(nested.manifests)) queue.push(...nested.manifests);
        } catch { /* passed over, as the CLI does */ }
      }
      out.push(d);
    }
    walked = out;
    return out;
  }

  // The Notary signature forms the CLI accepts (oci.rs `is_notary_signature`): the current
  // one (artifactType with the empty config) and the legacy one (config media type).
  const isSignature = (m) => (m.artifactType != null
    ? m.artifactType === NOTARY && m.config?.mediaType === EMPTY
    : m.config?.mediaType === NOTARY);

  // Targets: what index.json lists that is not itself a signature or a referrers tag index.
  const targets = [];
  for (const d of index.manifests) {
    if (/^sha256-[0-9a-f]{64}$/.test(d.annotations?.[REF_NAME] ?? '')) continue;
    if (d.mediaType === MANIFEST) {
      let manifest = null;
      try { manifest = JSON.parse(text.decode(await blob(d, MAX_MANIFEST, 'manifest'))); } catch { /* listed; reading it fails later */ }
      if (manifest && isSignature(manifest)) continue;
    }
    targets.push({ descriptor: { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.artifactType ? { artifactType: d.artifactType } : {}) }, tag: d.annotations?.[REF_NAME] });
  }

  /**
   * The signatures whose subject is `targetDigest`, in discovery order, envelopes read:
   * at most `max`, with `more` saying whether there were others.
   */
  async function signatures(targetDigest, max = DEFAULT_MAX_SIGNATURES) {
    const found = [];
    let more = false;
    for (const d of await allDescriptors()) {
      if (d.mediaType !== MANIFEST) continue;
      let m;
      try { m = JSON.parse(text.decode(await blob(d, MAX_MANIFEST, 'manifest'))); } catch (e) {
        if (e instanceof SyntaxError) continue; // not JSON: not a signature manifest
        throw e;
      }
      if (m?.subject?.digest !== targetDigest || !isSignature(m)) continue;
      if (found.length === max) { more = true; break; }
      if (!Array.isArray(m.layers) || m.layers.length !== 1) {
        throw new Error(`${name}: signature manifest ${d.digest} must have exactly one layer, found ${m.layers?.length ?? 0}`);
      }
      const [layer] = m.layers;
      found.push({ mediaType: layer.mediaType, envelope: await blob(layer, MAX_ENVELOPE, 'signature envelope'), manifestDigest: d.digest });
    }
    return { signatures: found, more };
  }
  return { name, targets, signatures };
}

function parseJson(bytes, what) {
  try { return JSON.parse(text.decode(bytes)); } catch (e) { throw new Error(`${what} is not JSON: ${e.message}`); }
}
