#!/usr/bin/env python3
"""run_api_bench.py - authenticated metadata reads per second: the mailbox API against nginx

One real pecd provider (tests/e2e/pec_network.py, real clamd) serves the mailbox API
([api]: mutual TLS, RS256 bearer tokens from a JWKS file, allow-list, every request
audited in the legal log). A receive-only mailbox is provisioned through the API and
receives MESSAGES certified messages through the full PEC flow. Then pecd_api_load
(bench/api/api_load.cpp: CONNECTIONS keep-alive TLS connections, each presenting the
client certificate) reads the messages' metadata (GET /v1/mailboxes/M/messages/ID, token
checked, catalog read, legal-log history, audit record committed before the answer) for
SECONDS after a warm-up.

The peer, in the same run and with the same client, certificates and TLS settings, is
nginx (Debian's nginx-light) with ssl_verify_client on, serving the same JSON body as a
static file from its page cache: what the TLS + HTTP part of such a read costs with no
token, no database and no audit. Printed: both figures, the ratio pecd/nginx, the
latencies, and the number of audit records the run added (must equal pecd's answers).

    python3 bench/api/run_api_bench.py [--build build] [--messages 20] [--connections 16] [--seconds 10]
"""
import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../../tests/e2e"))


def audit_count(data_dir):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "pecd.db"), uri=True, timeout=30)
    try:
        return sum(1 for (r,) in con.execute("SELECT record FROM log_records") if '"kind":"api-audit"' in r)
    finally:
        con.close()


def load(build, port, creds, server_ca, paths_file, token_file, connections, seconds):
    cmd = [os.path.join(build, "bench/api/pecd_api_load"), "--port", str(port), "--ca", server_ca,
           "--cert", creds.client_cert, "--key", creds.client_key, "--paths-file", paths_file,
           "--connections", str(connections), "--seconds", str(seconds), "--warmup", "2"]
    if token_file:
        cmd += ["--token-file", token_file]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if out.returncode != 0:
        raise SystemExit("pecd_api_load failed: %s %s" % (out.stdout, out.stderr))
    return json.loads(out.stdout)


def start_nginx(root, port, net, creds, body, paths):
    os.makedirs(os.path.join(root, "www"), exist_ok=True)
    with open(os.path.join(root, "www", "meta.json"), "wb") as f:
        f.write(body)
    conf = os.path.join(root, "nginx.conf")
    with open(conf, "w") as f:
        f.write("""worker_processes 2;
pid {root}/nginx.pid;
error_log {root}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  default_type application/json;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_client_certificate {client_ca};
    ssl_verify_client on;
    root {root}/www;
    location / {{ try_files /meta.json =404; }}
  }}
}}
""".format(root=root, port=port, cert=net.tls_cert, key=net.tls_key, client_ca=creds.ca))
    subprocess.run(["nginx", "-c", conf, "-p", root], check=True, timeout=30)
    return os.path.join(root, "nginx.pid")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "../../build"))
    ap.add_argument("--messages", type=int, default=20)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    os.environ["PECD_BINARY_DIR"] = build
    if not shutil.which("nginx"):
        raise SystemExit("nginx not found (scripts/install-deps.sh installs nginx-light)")
    from api_client import ApiClient, ApiCredentials
    from clamd_harness import ClamdInstance
    from pec_network import PecNetwork, free_port

    tmp = tempfile.TemporaryDirectory(prefix="pecd-bench-api-")
    clamd = ClamdInstance(os.path.join(tmp.name, "clamd")).start()
    creds = ApiCredentials(os.path.join(tmp.name, "portal"))
    net = PecNetwork(tmp.name, [("a.pec.test", "Gestore A")], clamd)
    (a,) = net.providers
    api_port = free_port()
    a.extra_toml = creds.config_toml(api_port)
    net.prepare()
    alice = a.add_mailbox("alice", "pw-alice")
    net.start()
    nginx_pid = None
    try:
        office = "registro@a.pec.test"
        admin = creds.token(scope="mailbox:read mailbox:provision", domains=["a.pec.test"], lifetime=3600)
        c = ApiClient(api_port, creds, net.tls_ca)
        status, _ = c.json("POST", "/v1/mailboxes", admin,
                           {"address": office, "kind": "receive-only", "accepts_ordinary_mail": False})
        assert status == 201, status
        for i in range(args.messages):
            a.submit(alice, [office], subject="Pratica %d" % i)
        deadline = time.monotonic() + 300
        while len(a.messages(office)) < args.messages:
            if time.monotonic() > deadline:
                raise SystemExit("the messages did not arrive")
            time.sleep(0.5)
        reader = creds.token(subject="portal-reader", mailboxes=[office], lifetime=3600)
        status, page = c.json("GET", "/v1/mailboxes/%s/messages?limit=500" % office, reader)
        paths = ["/v1/mailboxes/%s/messages/%d" % (office, m["id"]) for m in page["items"]]
        status, _, body = c.request("GET", paths[0], reader)
        assert status == 200
        c.close()
        paths_file = os.path.join(tmp.name, "paths.txt")
        with open(paths_file, "w") as f:
            f.write("\n".join(paths) + "\n")
        token_file = os.path.join(tmp.name, "token")
        with open(token_file, "w") as f:
            f.write(reader)

        before = audit_count(a.data_dir)
        pecd = load(build, api_port, creds, net.tls_ca, paths_file, token_file, args.connections, args.seconds)
        audited = audit_count(a.data_dir) - before

        nginx_port = free_port()
        nginx_pid = start_nginx(os.path.join(tmp.name, "nginx"), nginx_port, net, creds, body, paths)
        time.sleep(0.5)
        peer = load(build, nginx_port, creds, net.tls_ca, paths_file, None, args.connections, args.seconds)

        result = {"pecd": pecd, "nginx": peer, "audit_records_added": audited,
                  "ratio_pecd_over_nginx": pecd["requests_per_second"] / peer["requests_per_second"],
                  "body_bytes": len(body), "messages": len(paths), "cores": os.cpu_count()}
        print(json.dumps(result, indent=2))
        print("pecd  %.0f reads/s  p50 %.2f ms  p99 %.2f ms  (statuses %s, %d audit records for %d answers)"
              % (pecd["requests_per_second"], pecd["p50_ms"], pecd["p99_ms"], pecd["statuses"], audited,
                 pecd["answered_total"]))
        print("nginx %.0f reads/s  p50 %.2f ms  p99 %.2f ms  (static file, no token, no audit)"
              % (peer["requests_per_second"], peer["p50_ms"], peer["p99_ms"]))
        print("ratio pecd/nginx %.2f" % result["ratio_pecd_over_nginx"])
        if audited != pecd["answered_total"]:
            raise SystemExit("audit records (%d) differ from answers (%d)" % (audited, pecd["answered_total"]))
    finally:
        if nginx_pid and os.path.exists(nginx_pid):
            with open(nginx_pid) as f:
                os.kill(int(f.read().strip()), 15)
        net.stop()
        clamd.stop()
        tmp.cleanup()


if __name__ == "__main__":
    main()
