#!/usr/bin/env python3
"""https_server.py - a loopback HTTPS file server for the index download tests.

Serves the files of --dir over TLS on 127.0.0.1 (port chosen by the kernel, written to
--port-file once listening). Each response carries an ETag (SHA-256 of the content) and
Last-Modified (the file's mtime); If-None-Match and If-Modified-Since give 304. Every
request is appended to --log as "METHOD PATH STATUS" so the test can see what happened.
"""
import argparse
import email.utils
import hashlib
import http.server
import os
import ssl
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    root = os.path.abspath(args.dir)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def record(self, status):
            with open(args.log, "a") as f:
                f.write(f"{self.command} {self.path} {status} inm={self.headers.get('If-None-Match', '')} "
                        f"ims={self.headers.get('If-Modified-Since', '')}\n")

        def do_GET(self):
            path = os.path.join(root, self.path.lstrip("/"))
            if not os.path.abspath(path).startswith(root + os.sep) or not os.path.isfile(path):
                self.record(404)
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with open(path, "rb") as f:
                body = f.read()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            mtime = int(os.stat(path).st_mtime)
            last_modified = email.utils.formatdate(mtime, usegmt=True)
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            fresh = False
            if inm is not None:
                fresh = inm == etag
            elif ims is not None:
                try:
                    fresh = email.utils.parsedate_to_datetime(ims).timestamp() >= mtime
                except (TypeError, ValueError):
                    fresh = False
            if fresh:
                self.record(304)
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.record(200)
            self.send_response(200)
            self.send_header("Content-Type", "application/pkcs7-mime; smime-type=signed-data")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", last_modified)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
