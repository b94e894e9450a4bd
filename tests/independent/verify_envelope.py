#!/usr/bin/env python3
"""Independent verifier for Notary Project signature envelopes (JWS / COSE_Sign1).

Uses only jwcrypto (JWS), cbor2 + cryptography (COSE). Prints a JSON summary on
stdout and exits 0 when the envelope verifies; prints an error on stderr and
exits 1 otherwise.
"""
import argparse, base64, json, re, sys
from datetime import datetime

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwcrypto.common import JWSEHeaderParameter
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

CTY = "application/vnd.cncf.notary.payload.v1+json"
SCHEME, SIGTIME = "io.cncf.notary.signingScheme", "io.cncf.notary.signingTime"
AUTHTIME, EXPIRY = "io.cncf.notary.authenticSigningTime", "io.cncf.notary.expiry"
SCHEMES = ("notary.x509", "notary.x509.signingAuthority")
JWS_ALGS = ["PS256", "PS384", "PS512", "ES256", "ES384", "ES512"]
COSE_ALGS = {-37: ("PS256", hashes.SHA256), -38: ("PS384", hashes.SHA384),
             -39: ("PS512", hashes.SHA512), -7: ("ES256", hashes.SHA256),
             -35: ("ES384", hashes.SHA384), -36: ("ES512", hashes.SHA512)}
EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
# Notary-defined headers that this verifier understands and therefore accepts in "crit".
KNOWN_CRIT = (SCHEME, SIGTIME, AUTHTIME, EXPIRY)


class Fail(Exception):
    pass


def need(cond, msg):
    if not cond:
        raise Fail(msg)


def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def check_rfc3339(name, v):
    need(isinstance(v, str) and RFC3339.match(v), f"{name} is not an RFC 3339 string: {v!r}")
    datetime.fromisoformat(v.upper().replace("Z", "+00:00"))  # raises if e.g. month 13


def check_scheme(hdr, crit, time_ok):
    need(SCHEME in crit, f"crit does not contain {SCHEME}")
    need(hdr.get(SCHEME) in SCHEMES, f"bad {SCHEME}: {hdr.get(SCHEME)!r}")
    if hdr[SCHEME] == "notary.x509":
        need(SIGTIME in hdr, f"missing {SIGTIME}")
        time_ok(SIGTIME, hdr[SIGTIME])
    else:  # signingAuthority scheme: authenticSigningTime is required and critical
        need(AUTHTIME in hdr and AUTHTIME in crit, f"missing/non-critical {AUTHTIME}")
        time_ok(AUTHTIME, hdr[AUTHTIME])
    if EXPIRY in hdr:
        need(EXPIRY in crit, f"{EXPIRY} present but not critical")
        time_ok(EXPIRY, hdr[EXPIRY])


def verify_jws(raw):
    env = json.loads(raw)
    need(isinstance(env, dict), "JWS envelope is not a JSON object")
    for k in ("payload", "protected", "signature", "header"):
        need(k in env, f"JWS envelope lacks {k!r} (flattened serialization expected)")
    x5c = env["header"].get("x5c")
    need(isinstance(x5c, list) and x5c, "unprotected header lacks x5c")
    leaf = x509.load_der_x509_certificate(base64.b64decode(x5c[0], validate=True))
    hdr = json.loads(b64url(env["protected"]))
    need(isinstance(hdr, dict), "protected header is not a JSON object")
    need(hdr.get("alg") in JWS_ALGS, f"unsupported alg {hdr.get('alg')!r}")
    need(hdr.get("cty") == CTY, f"bad cty {hdr.get('cty')!r}")
    crit = hdr.get("crit")
    need(isinstance(crit, list), "protected header lacks crit list")
    check_scheme(hdr, crit, check_rfc3339)
    # jwcrypto rejects any "crit" name that is not in the JWS header registry with
    # supported=True.  Register the Notary headers this verifier understands
    # (mustprotect=True: they must appear in the protected header).  Unknown critical
    # headers therefore still fail, as RFC 7515 section 4.1.11 requires.
    registry = {n: JWSEHeaderParameter(n, True, True, None) for n in KNOWN_CRIT}
    jws = JWS(header_registry=registry)
    jws.allowed_algs = JWS_ALGS
    jws.deserialize(raw)
    jws.verify(JWK.from_pyca(leaf.public_key()))
    agent = env["header"].get("io.cncf.notary.signingAgent",
                              env["header"].get("io.cncf.notary.SigningAgent"))
    return {"format": "jws", "alg": hdr["alg"], "protected": hdr, "crit": crit,
            "payload": json.loads(jws.payload), "signingAgent": agent,
            "leafSubject": leaf.subject.rfc4514_string(), "verified": True}


def tag1_marker(value, *_):
    return {"tag": 1, "value": value}


def decode_protected(b):
    """Decode the protected map keeping CBOR tag 1 (epoch time) as a raw marker."""
    try:  # cbor2 >= 6: semantic decoders are callables (value, immutable)
        return cbor2.loads(b, semantic_decoders={1: tag1_marker})
    except TypeError:  # cbor2 5.x: use the pure-Python decoder's tag table
        import io
        from cbor2 import _decoder as pd
        saved = pd.semantic_decoders[1]
        pd.semantic_decoders[1] = lambda dec: tag1_marker(dec.decode())
        try:
            return pd.CBORDecoder(io.BytesIO(b)).decode()
        finally:
            pd.semantic_decoders[1] = saved


def check_tag1(name, v):
    need(isinstance(v, dict) and v.get("tag") == 1 and type(v.get("value")) is int,
         f"{name} is not CBOR tag 1 wrapping an integer: {v!r}")


def verify_cose(raw):
    msg = cbor2.loads(raw)
    need(isinstance(msg, cbor2.CBORTag) and msg.tag == 18, "not a CBOR tag 18 COSE_Sign1")
    need(isinstance(msg.value, (list, tuple)) and len(msg.value) == 4, "COSE_Sign1 is not a 4-array")
    prot_b, unprot, payload, sig = msg.value
    need(isinstance(prot_b, bytes) and isinstance(payload, bytes) and isinstance(sig, bytes),
         "protected/payload/signature must be byte strings (detached payload unsupported)")
    need(hasattr(unprot, "get"), "unprotected header is not a map")
    hdr = decode_protected(prot_b)
    need(isinstance(hdr, dict), "protected header is not a map")
    need(hdr.get(1) in COSE_ALGS, f"unsupported alg {hdr.get(1)!r}")
    alg, hfn = COSE_ALGS[hdr[1]]
    crit = hdr.get(2)
    need(isinstance(crit, list), "protected header lacks crit (label 2)")
    need(hdr.get(3) == CTY, f"bad content type (label 3): {hdr.get(3)!r}")
    unknown = [c for c in crit if c not in KNOWN_CRIT]
    need(not unknown, f"unknown critical headers: {unknown}")
    need(all(c in hdr for c in crit), "a crit label is missing from the protected header")
    check_scheme(hdr, crit, check_tag1)
    chain = unprot.get(33)
    need(isinstance(chain, (list, tuple)) and chain and isinstance(chain[0], bytes),
         "unprotected header lacks x5chain (label 33) array")
    leaf = x509.load_der_x509_certificate(chain[0])
    pub = leaf.public_key()
    tbs = cbor2.dumps(["Signature1", prot_b, b"", payload])
    try:
        if alg.startswith("PS"):
            need(isinstance(pub, rsa.RSAPublicKey), f"{alg} requires an RSA key")
            pub.verify(sig, tbs, padding.PSS(padding.MGF1(hfn()), hfn.digest_size), hfn())
        else:
            need(isinstance(pub, ec.EllipticCurvePublicKey) and pub.curve.name == EC_CURVES[alg],
                 f"{alg} requires an EC key on {EC_CURVES[alg]}")
            n = (pub.curve.key_size + 7) // 8
            need(len(sig) == 2 * n, f"ECDSA signature length {len(sig)} != {2 * n}")
            der = encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big"))
            pub.verify(der, tbs, ec.ECDSA(hfn()))
    except InvalidSignature:
        raise Fail("COSE signature verification failed") from None
    agent = unprot.get("io.cncf.notary.signingAgent", unprot.get("io.cncf.notary.SigningAgent"))
    return {"format": "cose", "alg": alg, "protected": hdr, "crit": crit,
            "payload": json.loads(payload), "signingAgent": agent,
            "leafSubject": leaf.subject.rfc4514_string(), "verified": True}


def jsonable(o):
    if isinstance(o, dict):
        return {str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, bytes):
        return {"bstr_base64": base64.b64encode(o).decode()}
    if isinstance(o, datetime):
        return o.isoformat()
    return o


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--media-type", required=True,
                    choices=["application/jose+json", "application/cose"])
    ap.add_argument("--envelope", required=True)
    ap.add_argument("--expect-payload-digest")
    a = ap.parse_args()
    try:
        with open(a.envelope, "rb") as f:
            raw = f.read()
        out = verify_jws(raw.decode("utf-8")) if a.media_type == "application/jose+json" \
            else verify_cose(raw)
        if a.expect_payload_digest is not None:
            got = (out["payload"].get("targetArtifact") or {}).get("digest")
            need(got == a.expect_payload_digest,
                 f"payload digest {got!r} != expected {a.expect_payload_digest!r}")
    except Exception as e:  # noqa: BLE001 - any failure means "not verified"
        print(f"verification failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(json.dumps(jsonable(out), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
