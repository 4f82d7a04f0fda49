"""A real OpenBao server (the Vault API) in dev mode: KV v2, PKI and a file audit device."""
import json
import os
import sys
import urllib.request
from pathlib import Path

from tests.lab import _proc


def bao_binary():
    candidate = Path(sys.executable).parent / "bao"
    return str(candidate) if candidate.exists() else "bao"


class OpenBao:
    token = "lab-root-token"

    def __init__(self, workdir, port=None, host="127.0.0.1"):
        self.workdir = Path(workdir)
        self.host = host
        self.port = port or _proc.free_port()
        self.proc = None
        self.audit_log = self.workdir / "bao-audit.log"

    @property
    def addr(self):
        return "http://%s:%d" % (self.host, self.port)

    def env(self):
        return {"VAULT_ADDR": self.addr, "VAULT_TOKEN": self.token,
                "BAO_ADDR": self.addr, "BAO_TOKEN": self.token}

    def api(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.addr + "/v1/" + path.lstrip("/"), data=data, method=method,
                                     headers={"X-Vault-Token": self.token,
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def start(self, timeout=30):
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.pop("VAULT_ADDR", None)
        env["HOME"] = str(self.workdir)
        # OpenBao 2.x only enables audit devices declaratively, from the server's config.
        config = self.workdir / "audit.hcl"
        config.write_text('audit "file" "lab-file" {\n  options {\n    file_path = "%s"\n  }\n}\n'
                          % self.audit_log)
        self.proc = _proc.start(
            [bao_binary(), "server", "-dev", "-dev-root-token-id=" + self.token,
             "-dev-listen-address=%s:%d" % (self.host, self.port), "-dev-no-store-token",
             "-config=" + str(config)],
            self.workdir / "bao.log", env=env)
        _proc.wait_until(lambda: _proc.http_ok(self.addr + "/v1/sys/health"), timeout,
                         what="OpenBao at " + self.addr)
        self._configure()
        return self

    def _configure(self):
        # KV v2 is mounted at secret/ in dev mode; add PKI with a root CA and a role.
        self.api("POST", "sys/mounts/pki", {"type": "pki", "config": {"max_lease_ttl": "8760h"}})
        self.api("POST", "pki/root/generate/internal",
                 {"common_name": "credops lab root CA", "ttl": "8760h"})
        self.api("POST", "pki/config/urls", {
            "issuing_certificates": self.addr + "/v1/pki/ca",
            "crl_distribution_points": self.addr + "/v1/pki/crl"})
        self.api("POST", "pki/roles/lab", {
            "allowed_domains": ["lab.test", "localhost"], "allow_subdomains": True,
            "allow_localhost": True, "allow_ip_sans": True, "max_ttl": "720h"})

    def stop(self):
        _proc.stop(self.proc)
        self.proc = None
