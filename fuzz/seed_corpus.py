#!/usr/bin/env python3
"""Seed inputs for the fuzz targets, from the conformance corpus (tests/conformance).

    python3 fuzz/seed_corpus.py --out target/fuzz/seeds [TARGET...]

Writes OUT/<target>/<sha1 of the content> (so duplicates collapse), for every target or
the ones named. Only the standard library is used. scripts/fuzz.sh runs it before each
fuzzing session; static seeds that cannot be derived from the corpus live in
fuzz/seeds/<target>/ and are copied by scripts/fuzz.sh.

Where the inputs come from:
  envelope_jws / envelope_cose  every signature a case names (by content, not by the
                                media type the case declares) and every *.sig file
  timestamp_token               token.p7s files and the countersignatures inside envelopes
  ber_to_der                    the timestamp tokens, DER certificates and CRL/OCSP seeds
  certificate_chain             certificate files, and each envelope's chain as
                                concatenated DER and as concatenated PEM
  dn                            x509.subject identities of the trust policies, one per
                                seed and a statement's identities one per line
  trust_policy                  trust policy documents (cases and policies/)
  payload                       the signed payloads of the envelopes
  http_bundle                   the documented JSON bundle of each verify case
  artifact_reference            case references, layout scopes, policy scopes
  oci_manifest / oci_layout     index.json, oci-layout markers and manifests of the layouts
"""

import argparse
import base64
import datetime
import hashlib
import json
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CASES = os.path.join(ROOT, "tests", "conformance", "cases")
TIMESTAMP_KEY = b"io.cncf.notary.timestampSignature"
DIGEST = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
MAX_BUNDLE = 64 * 1024

TARGETS = [
    "envelope_jws",
    "envelope_cose",
    "timestamp_token",
    "ber_to_der",
    "certificate_chain",
    "dn",
    "trust_policy",
    "payload",
    "http_bundle",
    "artifact_reference",
    "oci_manifest",
    "oci_layout",
]


class Seeds:
    def __init__(self, out, wanted):
        self.out = out
        self.wanted = set(wanted)
        self.count = {t: 0 for t in wanted}

    def add(self, target, data):
        if target not in self.wanted or not data:
            return
        if isinstance(data, str):
            data = data.encode()
        directory = os.path.join(self.out, target)
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, hashlib.sha1(data).hexdigest())
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
            self.count[target] += 1


def read(path):
    with open(path, "rb") as f:
        return f.read()


def files_under(directory):
    for base, _, names in os.walk(directory):
        for name in sorted(names):
            yield os.path.join(base, name)


# A small CBOR reader: enough for COSE_Sign1 (definite lengths only, as notation writes).
def cbor(data, i=0):
    head = data[i]
    major, info = head >> 5, head & 0x1F
    i += 1
    if info < 24:
        value = info
    elif info in (24, 25, 26, 27):
        n = 1 << (info - 24)
        value = int.from_bytes(data[i : i + n], "big")
        i += n
    else:
        raise ValueError("indefinite or reserved CBOR length")
    if major == 0:
        return value, i
    if major == 1:
        return -1 - value, i
    if major in (2, 3):
        raw = data[i : i + value]
        return (raw if major == 2 else raw.decode("utf-8", "replace")), i + value
    if major == 4:
        items = []
        for _ in range(value):
            item, i = cbor(data, i)
            items.append(item)
        return items, i
    if major == 5:
        items = {}
        for _ in range(value):
            key, i = cbor(data, i)
            item, i = cbor(data, i)
            items[key if not isinstance(key, (list, dict)) else repr(key)] = item
        return items, i
    if major == 6:
        return cbor(data, i)
    return value, i


def envelope_parts(data):
    """(kind, chain DERs, timestamp token, payload) of a JWS or COSE envelope, or None."""
    stripped = data.lstrip()
    if stripped.startswith(b"{"):
        try:
            envelope = json.loads(data)
            header = envelope.get("header") or {}
            chain = [base64.b64decode(c) for c in header.get("x5c") or []]
            token = header.get(TIMESTAMP_KEY.decode())
            token = base64.b64decode(token) if token else None
            payload = envelope.get("payload") or ""
            payload = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            return "jws", chain, token, payload
        except (ValueError, AttributeError, TypeError):
            return "jws", [], None, None
    if data[:2] == b"\xd2\x84":
        try:
            message, _ = cbor(data)
            unprotected = message[1] if isinstance(message[1], dict) else {}
            chain = [c for c in unprotected.get(33, []) if isinstance(c, bytes)]
            token = unprotected.get(TIMESTAMP_KEY.decode())
            payload = message[2] if isinstance(message[2], bytes) else None
            return "cose", chain, token, payload
        except (ValueError, IndexError, TypeError):
            return "cose", [], None, None
    return None


def pem(der):
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(lines) + "\n-----END CERTIFICATE-----\n"


def rfc3339(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def trust_stores(directory):
    stores = []
    x509 = os.path.join(directory, "x509")
    if not os.path.isdir(x509):
        return stores
    for store_type in sorted(os.listdir(x509)):
        for name in sorted(os.listdir(os.path.join(x509, store_type))):
            store_dir = os.path.join(x509, store_type, name)
            if not os.path.isdir(store_dir):
                continue
            certificates = []
            for path in files_under(store_dir):
                content = read(path)
                if b"-----BEGIN" in content:
                    certificates.append(content.decode("utf-8", "replace"))
                else:
                    certificates.append(base64.b64encode(content).decode())
            stores.append({"type": store_type, "name": name, "certificates": certificates})
    return stores


def bundle(case, case_dir):
    """The documented wasi:http bundle of a verify / verify-blob case, or None."""
    policy_path = case.get("trust_policy")
    if not policy_path:
        return None
    signatures = []
    for s in case.get("signatures") or []:
        path = os.path.join(case_dir, s.get("envelope_path", ""))
        if not os.path.isfile(path):
            return None
        entry = {
            "mediaType": s.get("envelope_media_type") or "application/jose+json",
            "envelope": base64.b64encode(read(path)).decode(),
        }
        if s.get("manifest_digest"):
            entry["manifestDigest"] = s["manifest_digest"]
        signatures.append(entry)
    out = {
        "policy": read(os.path.join(case_dir, policy_path)).decode("utf-8", "replace"),
        "trustStores": trust_stores(os.path.join(case_dir, case.get("trust_store") or "truststore")),
        "signatures": signatures,
    }
    if case.get("kind") == "verify-blob":
        d = case.get("blob_descriptor") or {}
        out["blob"] = {"digest": d.get("digest", ""), "size": d.get("size", 0)}
        if d.get("mediaType"):
            out["blob"]["mediaType"] = d["mediaType"]
        if case.get("policy_name"):
            out["blob"]["policyName"] = case["policy_name"]
    else:
        descriptor = (case.get("artifact") or {}).get("descriptor") or {}
        reference = case.get("artifact_reference") or "localhost:5000/e2e@" + descriptor.get("digest", DIGEST)
        repository = reference.rsplit("@", 1)[0]
        out["artifact"] = {
            "reference": repository + "@" + descriptor.get("digest", DIGEST),
            "descriptor": {
                "mediaType": descriptor.get("mediaType", ""),
                "digest": descriptor.get("digest", DIGEST),
                "size": descriptor.get("size", 0),
            },
        }
    if isinstance(case.get("verification_time"), int):
        out["verificationTime"] = rfc3339(case["verification_time"])
    if isinstance(case.get("user_metadata"), dict):
        out["userMetadata"] = case["user_metadata"]
    if case.get("max_signature_attempts"):
        out["maxSignatures"] = case["max_signature_attempts"]
    text = json.dumps(out, indent=1)
    return text if len(text) <= MAX_BUNDLE else None


def identities(policy_bytes):
    """The trustedIdentities lists of a (possibly malformed) trust policy."""
    try:
        document = json.loads(policy_bytes)
        statements = document.get("trustPolicies") or []
        return [
            [i for i in (s.get("trustedIdentities") or []) if isinstance(i, str)]
            for s in statements
            if isinstance(s, dict)
        ]
    except (ValueError, AttributeError):
        found = re.findall(rb'"(x509\.subject:[^"]*)"', policy_bytes)
        return [[f.decode("utf-8", "replace") for f in found]]


def scopes(policy_bytes):
    try:
        document = json.loads(policy_bytes)
        return [
            scope
            for s in document.get("trustPolicies") or []
            if isinstance(s, dict)
            for scope in s.get("registryScopes") or []
            if isinstance(scope, str)
        ]
    except (ValueError, AttributeError):
        return []


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("targets", nargs="*")
    args = parser.parse_args()
    wanted = [t for t in (args.targets or TARGETS) if t in TARGETS]
    seeds = Seeds(args.out, wanted)

    envelopes = set()
    policies = set()
    for case_dir in sorted(os.listdir(CASES)):
        directory = os.path.join(CASES, case_dir)
        case_path = os.path.join(directory, "case.json")
        if not os.path.isfile(case_path):
            continue
        case = json.loads(read(case_path))
        for s in case.get("signatures") or []:
            path = os.path.join(directory, s.get("envelope_path", ""))
            if os.path.isfile(path):
                envelopes.add(path)
        for field in ("timestamp_token",):
            if case.get(field):
                token = read(os.path.join(directory, case[field]))
                seeds.add("timestamp_token", token)
                seeds.add("ber_to_der", token)
        bundle_text = bundle(case, directory) if case.get("kind") in ("verify", "verify-blob") else None
        seeds.add("http_bundle", bundle_text)
        reference = case.get("artifact_reference")
        if reference:
            seeds.add("artifact_reference", reference)
            seeds.add("artifact_reference", reference.rsplit("@", 1)[0] + ":v1")
        artifact = case.get("artifact") or {}
        if artifact.get("oci_layout_scope"):
            seeds.add("artifact_reference", artifact["oci_layout_scope"] + "@" + DIGEST)
        if artifact.get("oci_layout") and artifact.get("tag"):
            seeds.add("artifact_reference", artifact["oci_layout"] + ":" + artifact["tag"])

        for path in files_under(directory):
            name = os.path.basename(path)
            data = read(path)
            if name.endswith(".sig") or name == "signature.json":
                envelopes.add(path)
            if name.startswith("trustpolicy"):
                policies.add(path)
            if name.endswith((".crt", ".pem", ".cer", ".der")) or "/truststore/" in path:
                seeds.add("certificate_chain", data)
                if not data.lstrip().startswith(b"-----"):
                    seeds.add("ber_to_der", data)
            if "/oci-layout/" in path:
                stripped = data.lstrip()
                if name in ("index.json", "oci-layout"):
                    seeds.add("oci_layout", data)
                    seeds.add("oci_manifest", data)
                elif stripped.startswith(b"{") and b'"schemaVersion"' in data:
                    seeds.add("oci_manifest", data)
                    seeds.add("oci_layout", data)
                if envelope_parts(data) is not None and b'"schemaVersion"' not in data:
                    envelopes.add(path)

    for path in sorted(envelopes):
        data = read(path)
        parts = envelope_parts(data)
        if parts is None:
            continue
        kind, chain, token, payload = parts
        seeds.add("envelope_jws" if kind == "jws" else "envelope_cose", data)
        if token:
            seeds.add("timestamp_token", token)
            seeds.add("ber_to_der", token)
        if payload:
            seeds.add("payload", payload)
        if chain:
            seeds.add("certificate_chain", b"".join(chain))
            seeds.add("certificate_chain", "".join(pem(c) for c in chain))
            for der in chain:
                seeds.add("certificate_chain", der)

    policies.update(
        os.path.join(ROOT, "policies", name)
        for name in os.listdir(os.path.join(ROOT, "policies"))
        if name.endswith(".json")
    )
    for path in sorted(policies):
        data = read(path)
        seeds.add("trust_policy", data)
        for statement in identities(data):
            subjects = [i.split(":", 1)[1] for i in statement if i.startswith("x509.subject:")]
            for subject in subjects:
                seeds.add("dn", subject)
            if statement:
                seeds.add("dn", "\n".join(statement))
        for scope in scopes(data):
            seeds.add("artifact_reference", scope)
            seeds.add("artifact_reference", scope + "@" + DIGEST)
    for reference in (
        "docker.io/library/nginx:1.25",
        "nginx",
        "library/nginx@" + DIGEST,
        "localhost:5000/e2e:v1@" + DIGEST,
        "oci-layout-dir:v1",
        "./layout@" + DIGEST,
    ):
        seeds.add("artifact_reference", reference)

    for target in wanted:
        print(f"  {target}: {seeds.count[target]} seeds from tests/conformance", file=sys.stderr)


if __name__ == "__main__":
    main()
