"""api_client - what a registry portal needs to call pecd's mailbox API, for tests and benchmarks.

ApiCredentials(directory) makes, with the openssl command only:
  - a client CA and a client certificate issued by it (mutual TLS), and a foreign CA
    with its own client (must be refused);
  - an RSA-2048 token signing key, published as a JWKS file (kid "portal-key-1"), and
    more keys on demand (add_key, write_jwks: key rotation);
and signs RS256 bearer tokens (`token(..., kid=)`) with `openssl dgst -sha256 -sign`.

ApiClient(port, credentials, server_ca) is a keep-alive HTTPS client (http.client) that
presents the client certificate; request() returns (status, headers, body bytes).
"""
import base64
import http.client
import json
import os
import re
import ssl
import subprocess
import time

ISSUER = "https://idp.pecd.test/realms/registry"
AUDIENCE = "pecd-mailbox-api"
KID = "portal-key-1"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def run(*args, input=None):
    return subprocess.run(args, check=True, capture_output=True, input=input, timeout=60).stdout


class ApiCredentials:
    def __init__(self, directory):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca, self.client_cert, self.client_key = self._ca_and_client("portal")
        self.foreign_ca, self.foreign_cert, self.foreign_key = self._ca_and_client("foreign")
        self.keys = {}
        self.signing_key = self.add_key(KID)
        self.jwks = os.path.join(directory, "jwks.json")
        self.write_jwks(self.jwks, [KID])

    def add_key(self, kid):
        """A new RSA-2048 signing key named `kid` (key rotation at the identity provider)."""
        path = os.path.join(self.dir, "jwt-%s.key" % kid)
        run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", path)
        self.keys[kid] = path
        return path

    def write_jwks(self, path, kids):
        """The JWKS document publishing the public keys `kids`, written atomically."""
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"keys": [self._public_jwk(k) for k in kids]}, f)
        os.replace(tmp, path)

    def _ca_and_client(self, name):
        d = self.dir
        ca_key, ca = os.path.join(d, name + "-ca.key"), os.path.join(d, name + "-ca.pem")
        key, csr, cert = (os.path.join(d, name + "-client" + s) for s in (".key", ".csr", ".pem"))
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", ca_key, "-out", ca, "-days", "30", "-subj", "/CN=%s client CA" % name,
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
            "-out", csr, "-subj", "/O=Registro Imprese/CN=%s-portal" % name)
        ext = os.path.join(d, name + "-client.ext")
        with open(ext, "w") as f:
            f.write("extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n")
        run("openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
            "-days", "30", "-extfile", ext)
        return ca, cert, key

    def _public_jwk(self, kid):
        text = run("openssl", "rsa", "-in", self.keys[kid], "-noout", "-modulus").decode()
        n = bytes.fromhex(re.search(r"Modulus=([0-9A-F]+)", text).group(1))
        return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256", "n": b64url(n), "e": b64url(b"\x01\x00\x01")}

    def token(self, subject="registry-portal", scope="mailbox:read", domains=(), mailboxes=(), lifetime=600,
              kid=KID, **extra):
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "nbf": now - 5, "exp": now + lifetime,
                  "jti": "t-%d" % time.monotonic_ns(), "scope": scope}
        if domains:
            claims["pecd_domains"] = list(domains)
        if mailboxes:
            claims["pecd_mailboxes"] = list(mailboxes)
        claims.update(extra)
        header = {"alg": "RS256", "typ": "JWT", "kid": kid}
        signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
        sig = run("openssl", "dgst", "-sha256", "-sign", self.keys[kid], input=signing_input)
        return signing_input.decode() + "." + b64url(sig)

    def config_toml(self, port, allow=('127.0.0.1/32', '::1/128'), keys=None):
        """The [api] section; keys: the key source lines (default: this JWKS file)."""
        keys = keys or 'jwks_file = "%s"\n' % self.jwks
        return ('[api]\nlisten = "127.0.0.1:%d"\nclient_ca = "%s"\nissuer = "%s"\naudience = "%s"\n'
                '%sallow = [%s]\n' % (port, self.ca, ISSUER, AUDIENCE, keys, ", ".join('"%s"' % a for a in allow)))


class ApiClient:
    def __init__(self, port, credentials, server_ca, cert=None, key=None, host="127.0.0.1"):
        ctx = ssl.create_default_context(cafile=server_ca)
        ctx.check_hostname = False  # the server certificate names localhost and 127.0.0.1
        if cert is not False:
            ctx.load_cert_chain(cert or credentials.client_cert, key or credentials.client_key)
        self.conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=30)

    def request(self, method, path, token=None, body=None):
        headers = {}
        if token:
            headers["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=data, headers=headers)
        r = self.conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()

    def json(self, method, path, token=None, body=None):
        status, headers, data = self.request(method, path, token, body)
        return status, json.loads(data) if data else None

    def close(self):
        self.conn.close()
