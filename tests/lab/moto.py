"""A moto server: AWS IAM and Secrets Manager over HTTP on loopback."""
import os
import shutil
import sys
from pathlib import Path

from tests.lab import _proc


class Moto:
    region = "us-east-1"
    access_key = "testing"
    secret_key = "testing"

    def __init__(self, workdir, port=None):
        self.workdir = Path(workdir)
        self.port = port or _proc.free_port()
        self.proc = None

    @property
    def endpoint_url(self):
        return "http://127.0.0.1:%d" % self.port

    def env(self):
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": self.region, "AWS_REGION": self.region,
                "AWS_ENDPOINT_URL": self.endpoint_url}

    def client(self, service):
        import boto3
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key)

    def start(self, timeout=30):
        self.workdir.mkdir(parents=True, exist_ok=True)
        exe = Path(sys.executable).parent / "moto_server"
        if not exe.exists():  # the nox matrix's virtualenvs take the lab's tools from PATH
            exe = shutil.which("moto_server") or exe
        env = dict(os.environ)
        env.update(self.env())
        self.proc = _proc.start([str(exe), "-H", "127.0.0.1", "-p", str(self.port)],
                                self.workdir / "moto.log", env=env)
        _proc.wait_until(lambda: _proc.http_ok(self.endpoint_url + "/moto-api/"), timeout,
                         what="moto at " + self.endpoint_url)
        return self

    def reset(self):
        import urllib.request
        urllib.request.urlopen(urllib.request.Request(
            self.endpoint_url + "/moto-api/reset", method="POST"), timeout=10).read()

    def stop(self):
        _proc.stop(self.proc)
        self.proc = None
