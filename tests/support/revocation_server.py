#!/usr/bin/env python3
"""A loopback HTTP server for the revocation tests: CRLs as files, OCSP through
`openssl ocsp`, and failure modes switched per path while it runs.

    revocation_server.py --port P --dir DIR
        [--ocsp-index index.txt --ocsp-ca CA.pem --ocsp-rsigner SIGNER.pem
         --ocsp-rkey SIGNER.key [--ocsp-ndays N]]

Without `--ocsp-*` it serves `DIR/<path>` (GET/HEAD; 404 when missing). With them it is an
OCSP responder (RFC 6960 appendix A): a POST body, or a GET path holding the base64 of
the DER request, is answered by `openssl ocsp -reqin ... -respout ...` run for that one
request, so the responder reads the CA's `openssl ca` index afresh each time: a
revocation shows at once, no restart needed.

Behaviour is switched without a restart by a file `DIR/<name>.status` (name = the request
path without its leading `/`), else `DIR/_all.status` (every path), holding one of:

    404 | 500 | any 3-digit code   that status, a short body
    NNN real                       status NNN with the real answer (a 203 or 206 CRL)
    301 URL | 302 URL ...          a redirect to URL
    hang                           read the request, never answer (gives up after 300 s)
    close                          read the request, close the connection unanswered
    huge                           200 with a 40 MiB body (Content-Length sent)
    endless                        200 without Content-Length, bytes until the client
                                   leaves (at most 1 GiB)
    slow                           the real answer, one byte per second
    garbage                        200 with bytes that are not DER
    empty                          200 with an empty body
    ok                             the real answer (same as no file)

Every request is appended as `METHOD PATH` to `DIR/requests.log` before it is answered.
Binds 127.0.0.1 only; prints nothing; stop it by PID (SIGTERM/SIGKILL).
"""

import argparse
import base64
import http.server
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

HUGE = 40 * 1024 * 1024
ENDLESS_CAP = 1024 * 1024 * 1024
HANG_LIMIT = 300
CHUNK = 64 * 1024


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "revocation-test"
    sys_version = ""

    # Quiet: nothing on stderr that a test would have to drain.
    def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's name)
        pass

    def do_GET(self):
        self.handle_any(b"")

    def do_HEAD(self):
        self.handle_any(b"")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, 1024 * 1024)) if length > 0 else b""
        self.handle_any(body)

    # --- helpers -----------------------------------------------------------------------

    def name(self):
        path = urllib.parse.urlsplit(self.path).path
        return urllib.parse.unquote(path).lstrip("/")

    def behaviour(self):
        directory = self.server.directory
        name = self.name()
        candidates = []
        if name and "/" not in name and not name.startswith("."):
            candidates.append(os.path.join(directory, name + ".status"))
        candidates.append(os.path.join(directory, "_all.status"))
        for candidate in candidates:
            try:
                with open(candidate, encoding="utf-8") as f:
                    text = f.read().strip()
                if text:
                    return text
            except OSError:
                continue
        return "ok"

    def log_request_line(self):
        with self.server.log_lock:
            with open(os.path.join(self.server.directory, "requests.log"), "a", encoding="utf-8") as f:
                f.write(f"{self.command} {self.path}\n")
                f.flush()

    def send(self, status, body, content_type="application/octet-stream", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers:
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def real_answer(self, request_body):
        """(status, body, content type) of the answer without any behaviour."""
        if self.server.ocsp is not None:
            return self.ocsp_answer(request_body)
        name = self.name()
        if not name or name.startswith(".") or "/" in name or name.endswith(".status") or name == "requests.log":
            return 404, b"not found\n", "text/plain"
        path = os.path.join(self.server.directory, name)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return 404, b"not found\n", "text/plain"
        content_type = "application/pkix-crl" if name.endswith(".crl") else "application/octet-stream"
        return 200, data, content_type

    def ocsp_answer(self, request_body):
        der = request_body
        if self.command != "POST":
            encoded = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path.lstrip("/"))
            try:
                der = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=False)
            except ValueError:
                der = b""
        if not der:
            return 400, b"no OCSP request\n", "text/plain"
        ocsp = self.server.ocsp
        with tempfile.TemporaryDirectory() as work:
            request = os.path.join(work, "request.der")
            response = os.path.join(work, "response.der")
            with open(request, "wb") as f:
                f.write(der)
            command = [
                "openssl", "ocsp",
                "-index", ocsp["index"],
                "-CA", ocsp["ca"],
                "-rsigner", ocsp["rsigner"],
                "-rkey", ocsp["rkey"],
                "-ndays", str(ocsp["ndays"]),
                "-reqin", request,
                "-respout", response,
            ]
            try:
                done = subprocess.run(command, capture_output=True, timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                return 500, b"openssl ocsp did not run\n", "text/plain"
            try:
                with open(response, "rb") as f:
                    data = f.read()
            except OSError:
                data = b""
            if done.returncode != 0 or not data:
                return 500, b"openssl ocsp failed: " + done.stderr[-400:], "text/plain"
            return 200, data, "application/ocsp-response"

    def handle_any(self, request_body):
        self.log_request_line()
        behaviour = self.behaviour()
        word = behaviour.split()[0]
        try:
            if word == "hang":
                self.close_connection = True
                deadline = time.monotonic() + HANG_LIMIT
                while time.monotonic() < deadline and not self.server.stopping:
                    time.sleep(0.2)
                return
            if word == "close":
                self.close_connection = True
                return
            if word in ("301", "302", "303", "307", "308"):
                location = behaviour.split(None, 1)[1] if len(behaviour.split()) > 1 else "/"
                self.send(int(word), b"moved\n", "text/plain", [("Location", location)])
                return
            if word.isdigit() and len(word) == 3 and behaviour.split()[1:] == ["real"]:
                _, body, content_type = self.real_answer(request_body)
                self.send(int(word), body, content_type)
                return
            if word.isdigit() and len(word) == 3 and word != "200":
                self.send(int(word), f"status {word}\n".encode(), "text/plain")
                return
            if word == "huge":
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(HUGE))
                self.end_headers()
                self.stream(HUGE)
                return
            if word == "endless":
                self.close_connection = True
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Connection", "close")
                self.end_headers()
                self.stream(ENDLESS_CAP)
                return
            if word == "garbage":
                self.send(200, b"this is not DER: " + b"\xff" * 512, "application/pkix-crl")
                return
            if word == "empty":
                self.send(200, b"", "application/pkix-crl")
                return
            status, body, content_type = self.real_answer(request_body)
            if word == "slow" and status == 200:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                deadline = time.monotonic() + HANG_LIMIT
                for i in range(len(body)):
                    if time.monotonic() > deadline or self.server.stopping:
                        break
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(1)
                self.close_connection = True
                return
            self.send(status, body, content_type)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    def stream(self, total):
        block = b"\x30" + b"\x00" * (CHUNK - 1)
        sent = 0
        while sent < total and not self.server.stopping:
            n = min(CHUNK, total - sent)
            self.wfile.write(block[:n])
            sent += n
        self.wfile.flush()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, directory, ocsp):
        super().__init__(address, Handler)
        self.directory = directory
        self.ocsp = ocsp
        self.log_lock = threading.Lock()
        self.stopping = False


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--ocsp-index")
    p.add_argument("--ocsp-ca")
    p.add_argument("--ocsp-rsigner")
    p.add_argument("--ocsp-rkey")
    p.add_argument("--ocsp-ndays", type=int, default=1)
    args = p.parse_args()

    ocsp = None
    given = [args.ocsp_index, args.ocsp_ca, args.ocsp_rsigner, args.ocsp_rkey]
    if any(given):
        if not all(given):
            sys.exit("revocation_server.py: --ocsp-index, --ocsp-ca, --ocsp-rsigner and --ocsp-rkey go together")
        ocsp = {
            "index": os.path.abspath(args.ocsp_index),
            "ca": os.path.abspath(args.ocsp_ca),
            "rsigner": os.path.abspath(args.ocsp_rsigner),
            "rkey": os.path.abspath(args.ocsp_rkey),
            "ndays": args.ocsp_ndays,
        }
    os.makedirs(args.dir, exist_ok=True)
    server = Server(("127.0.0.1", args.port), os.path.abspath(args.dir), ocsp)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.stopping = True
        server.server_close()


if __name__ == "__main__":
    main()
