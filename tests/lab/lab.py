"""The whole lab in one object: stores, issuers, consumers on systemd hosts, Kubernetes emulator.

    with Lab(workdir, hosts=3) as lab:
        lab.install_consumer(lab.hosts[0], initial_key)
        inv = lab.write_inventory(credentials={...}, groups={"web": ["web1", "web2"]})

Every service listens on 127.0.0.1; the demo provider also listens on the hosts' gateway
address so the consumer applications on the systemd hosts can reach it.
"""
import json
import sys
from pathlib import Path

import yaml

from tests.lab.moto import Moto
from tests.lab.openbao import OpenBao
from tests.lab.provider import Provider

CONSUMER_APP = Path(__file__).with_name("consumer_app.py")
APP_DIR = "/opt/credops-demo"

UNIT = """[Unit]
Description=Demo payment integration consumer ({name})
After=network.target

[Service]
EnvironmentFile={env_file}
Environment=PROVIDER_URL={provider_url}
Environment=LISTEN_PORT={port}
Environment=KEY_ENV_VAR={env_var}
ExecStart=/usr/bin/python3 {app_dir}/consumer_app.py
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


class Lab:
    def __init__(self, workdir, hosts=2, host_prefix="web", k8s=False, postgres=False):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.n_hosts = hosts
        self.host_prefix = host_prefix
        self.want_k8s = k8s
        self.want_postgres = postgres
        self.openbao = self.moto = self.provider = self.systemd = self.k8s = self.postgres = None
        self._started = []

    # -- lifecycle ---------------------------------------------------------------------
    def _start(self, service):
        self._started.append(service)
        return service.start()

    def start(self):
        try:
            self.openbao = self._start(OpenBao(self.workdir / "openbao"))
            self.moto = self._start(Moto(self.workdir / "moto"))
            binds = ["127.0.0.1"]
            if self.n_hosts:
                from tests.lab.hosts import SystemdHosts
                self.systemd = self._start(SystemdHosts(self.workdir / "hosts", count=self.n_hosts,
                                                        prefix=self.host_prefix))
                binds.append(self.systemd.gateway)
            self.provider = self._start(Provider(self.workdir / "provider", binds=binds))
            if self.want_postgres:
                from tests.lab.postgres import Postgres
                self.postgres = self._start(Postgres())
            if self.want_k8s:
                from tests.lab.k8s_emulator import K8sEmulator
                self.k8s = self._start(K8sEmulator(self.workdir / "k8s", vault_addr=self.openbao.addr,
                                                   vault_token=self.openbao.token,
                                                   provider_url=self.provider.url))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        errors = []
        for service in reversed(self._started):
            try:
                service.stop()
            except Exception as exc:  # keep tearing the rest down
                errors.append("%s: %s" % (type(service).__name__, exc))
        self._started = []
        if errors:
            raise RuntimeError("lab teardown: " + "; ".join(errors))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def hosts(self):
        return self.systemd.hosts if self.systemd else []

    def env(self):
        env = dict(self.openbao.env())
        env.update(self.moto.env())
        env["PROVIDER_ADMIN_TOKEN"] = self.provider.admin_token
        return env

    # -- consumers ---------------------------------------------------------------------
    def install_consumer(self, host, key, name="payment-app", env_file="/etc/application/environment",
                         env_var="PAYMENT_API_KEY", port=8080, extra_env=("LOG_LEVEL=info",)):
        """Install the demo consumer as a systemd service on a lab host, with its key."""
        host.put_file(APP_DIR + "/consumer_app.py", CONSUMER_APP.read_text(), mode=0o755)
        lines = list(extra_env) + ["%s=%s" % (env_var, key)]
        host.put_file(env_file, "\n".join(lines) + "\n", mode=0o600)
        host.put_file("/etc/systemd/system/%s.service" % name, UNIT.format(
            name=name, env_file=env_file, env_var=env_var, port=port, app_dir=APP_DIR,
            provider_url=self.provider.url_on(self.systemd.gateway)))
        host.systemctl("daemon-reload")
        host.systemctl("enable", name + ".service")
        # restart, not start: a service already running must pick up the key just written
        host.systemctl("restart", name + ".service")

    def consumer_url(self, host, port=8080, path="/health/payment-integration"):
        return "http://%s:%d%s" % (host.address, port, path)

    # -- inventory ---------------------------------------------------------------------
    def inventory(self, groups=None, credentials=None, extra_vars=None):
        """An inventory dict: localhost, the lab hosts in groups, the k8s cluster entry."""
        py = sys.executable
        hostvars = {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": py}}
        children = {}
        for h in self.hosts:
            hostvars[h.name] = self.systemd.inventory_vars(h)
        for group, members in (groups or {self.host_prefix: [h.name for h in self.hosts]}).items():
            children[group] = {"hosts": {m: None for m in members}}
        if self.k8s:
            hostvars["lab-cluster"] = {"ansible_connection": "local", "ansible_python_interpreter": py,
                                       "kubeconfig": str(self.k8s.kubeconfig_path)}
            children.setdefault("clusters", {"hosts": {"lab-cluster": None}})
        all_vars = {
            "vault_addr": self.openbao.addr,
            "lab_provider_url": self.provider.url,
            "lab_aws_endpoint_url": self.moto.endpoint_url,
            "rotation_audit_log": str(self.workdir / "rotation-audit.jsonl"),
            "rotation_incident_dir": str(self.workdir / "incidents"),
        }
        all_vars.update(extra_vars or {})
        if credentials is not None:
            all_vars["rotation_credentials"] = credentials
        inv = {"all": {"hosts": {n: v for n, v in hostvars.items() if n == "localhost"},
                       "vars": all_vars, "children": children}}
        for name, v in hostvars.items():
            if name == "localhost":
                continue
            for group in children.values():
                if name in group["hosts"]:
                    group["hosts"][name] = v
        return inv

    def write_inventory(self, path=None, **kwargs):
        path = Path(path or self.workdir / "inventory.yml")
        path.write_text(yaml.safe_dump(self.inventory(**kwargs), sort_keys=False))
        return path

    def audit_entries(self):
        path = self.workdir / "rotation-audit.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
