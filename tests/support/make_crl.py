#!/usr/bin/env python3
"""Build a CRL for the revocation tests (tests/support/pki.rs calls it).

`openssl ca -gencrl` makes ordinary CRLs; this script makes the ones it cannot: delta CRLs
(DeltaCRLIndicator) and bases naming them (FreshestCRL), entries with any reason code
(certificateHold, removeFromCRL) and invalidity dates, chosen thisUpdate/nextUpdate
(an expired CRL), a CRL signed by a key other than its issuer's, and a CRL whose
signature is corrupted.

    make_crl.py --ca-cert CA.pem --ca-key CA.key --out FILE.crl [--pem]
        [--number N] [--delta-of BASE_NUMBER] [--freshest URL]
        [--this-update SECONDS] [--next-update SECONDS]
        [--index index.txt] [--entry SERIAL_HEX:REASON[:REVOKED[:INVALIDITY]]]...
        [--sign-key OTHER.key] [--corrupt-signature]

Times are offsets in seconds from now (negative = past). REASON is an RFC 5280 name
(keyCompromise, certificateHold, removeFromCRL, ...) or `none` for an entry without a
reason code. `--index` adds every revoked entry of an `openssl ca` database. Output is
DER unless `--pem`. Uses only the `cryptography` package (scripts/setup.sh installs it).
"""

import argparse
import datetime
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

REASONS = {
    "unspecified": x509.ReasonFlags.unspecified,
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "cACompromise": x509.ReasonFlags.ca_compromise,
    "CACompromise": x509.ReasonFlags.ca_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "certificateHold": x509.ReasonFlags.certificate_hold,
    "removeFromCRL": x509.ReasonFlags.remove_from_crl,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
    "aACompromise": x509.ReasonFlags.aa_compromise,
}


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def at(offset):
    return now() + datetime.timedelta(seconds=int(offset))


def parse_openssl_time(text):
    """`YYMMDDHHMMSSZ` or `YYYYMMDDHHMMSSZ` (openssl index.txt)."""
    text = text.strip()
    fmt = "%y%m%d%H%M%SZ" if len(text) == 13 else "%Y%m%d%H%M%SZ"
    return datetime.datetime.strptime(text, fmt).replace(tzinfo=datetime.timezone.utc)


def index_entries(path):
    """(serial, reason, revoked, invalidity) of every revoked line of an openssl index."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split("\t")
            if len(fields) < 4 or fields[0] != "R":
                continue
            parts = fields[2].split(",")
            revoked = parse_openssl_time(parts[0])
            reason = parts[1] if len(parts) > 1 and parts[1] else "none"
            invalidity = None
            # openssl's spellings: -crl_hold writes `holdInstruction,OID`; -crl_compromise
            # and -crl_CA_compromise write `keyTime,TIME` / `CAkeyTime,TIME`.
            if reason == "holdInstruction":
                reason = "certificateHold"
            elif reason in ("keyTime", "CAkeyTime"):
                reason = "keyCompromise" if reason == "keyTime" else "cACompromise"
                if len(parts) > 2 and parts[2]:
                    invalidity = parse_openssl_time(parts[2])
            out.append((int(fields[3], 16), reason, revoked, invalidity))
    return out


def entry(serial, reason, revoked, invalidity):
    builder = (
        x509.RevokedCertificateBuilder()
        .serial_number(serial)
        .revocation_date(revoked)
    )
    if reason != "none":
        if reason not in REASONS:
            sys.exit(f"make_crl.py: unknown reason {reason!r}")
        builder = builder.add_extension(x509.CRLReason(REASONS[reason]), critical=False)
    if invalidity is not None:
        builder = builder.add_extension(x509.InvalidityDate(invalidity), critical=False)
    return builder.build()


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), password=None)


def corrupt_signature(der):
    """Flip the last byte of the DER: the end of the signature BIT STRING (for ECDSA the
    last byte of `s`, for RSA of the signature value), so the CRL still parses."""
    out = bytearray(der)
    out[-1] ^= 0x01
    return bytes(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ca-cert", required=True)
    p.add_argument("--ca-key", required=True)
    p.add_argument("--sign-key", help="sign with this key instead of the CA's")
    p.add_argument("--out", required=True)
    p.add_argument("--pem", action="store_true")
    p.add_argument("--number", type=int, default=1)
    p.add_argument("--delta-of", type=int, help="make a delta CRL of this base CRL number")
    p.add_argument("--freshest", action="append", default=[], help="FreshestCRL URL")
    p.add_argument("--this-update", type=int, default=-60)
    p.add_argument("--next-update", type=int, default=3600)
    p.add_argument("--index", help="an openssl ca index.txt whose revoked entries to list")
    p.add_argument("--entry", action="append", default=[])
    p.add_argument("--corrupt-signature", action="store_true")
    args = p.parse_args()

    with open(args.ca_cert, "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    key = load_key(args.sign_key or args.ca_key)

    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.subject)
        .last_update(at(args.this_update))
        .next_update(at(args.next_update))
        .add_extension(x509.CRLNumber(args.number), critical=False)
    )
    try:
        ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
            critical=False,
        )
    except x509.ExtensionNotFound:
        pass
    if args.delta_of is not None:
        builder = builder.add_extension(x509.DeltaCRLIndicator(args.delta_of), critical=True)
    if args.freshest:
        points = [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
            for url in args.freshest
        ]
        builder = builder.add_extension(x509.FreshestCRL(points), critical=False)

    entries = index_entries(args.index) if args.index else []
    for spec in args.entry:
        parts = spec.split(":")
        if len(parts) < 2:
            sys.exit(f"make_crl.py: --entry {spec!r}: want SERIAL_HEX:REASON[:REVOKED[:INVALIDITY]]")
        revoked = at(parts[2]) if len(parts) > 2 and parts[2] else at(-30)
        invalidity = at(parts[3]) if len(parts) > 3 and parts[3] else None
        entries.append((int(parts[0], 16), parts[1], revoked, invalidity))
    for serial, reason, revoked, invalidity in entries:
        builder = builder.add_revoked_certificate(entry(serial, reason, revoked, invalidity))

    if isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        crl = builder.sign(private_key=key, algorithm=hashes.SHA256())
    else:
        crl = builder.sign(private_key=key, algorithm=None)
    der = crl.public_bytes(serialization.Encoding.DER)
    if args.corrupt_signature:
        der = corrupt_signature(der)
    if args.pem:
        import base64

        body = base64.encodebytes(der).decode().replace("\n", "")
        lines = [body[i : i + 64] for i in range(0, len(body), 64)]
        data = ("-----BEGIN X509 CRL-----\n" + "\n".join(lines) + "\n-----END X509 CRL-----\n").encode()
    else:
        data = der
    with open(args.out, "wb") as f:
        f.write(data)


if __name__ == "__main__":
    main()
