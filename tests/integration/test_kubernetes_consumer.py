"""credops.rotation.kubernetes_consumer against the lab's Kubernetes API emulator.

Services started here (all on 127.0.0.1, all torn down even when a test fails):
* a real OpenBao dev server (KV v2 at secret/), the store the ExternalSecrets read from,
* a stub payment provider: GET /v1/test accepts the Bearer tokens in ``provider.accepted``,
* the Kubernetes API emulator (tests/lab/k8s_emulator.py), wired to both.

The module runs through ansible-playbook; results are checked with the official kubernetes
client, hvac and the emulator's /_emulator endpoints, never with the module's own code.
Every case searches the complete ansible output for the planted secret values.
"""
import base64
import calendar
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import hvac
import pytest
import requests
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from tests.lab.ansible_runner import run_module
from tests.lab.k8s_emulator import K8sEmulator

pytestmark = pytest.mark.lab

MODULE = "credops.rotation.kubernetes_consumer"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
BAO_TOKEN = "root"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check, timeout, what):
    """Bounded poll: check() truthy within timeout seconds, else fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail("%s not reached within %ss" % (what, timeout))


# ------------------------------------------------------------------ services

@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    """A real OpenBao dev server; killed at the end."""
    beside = Path(sys.executable).parent / "bao"
    binary = str(beside) if beside.exists() else shutil.which("bao")
    if not binary:
        pytest.skip("the OpenBao binary (bao) is not installed")
    work = tmp_path_factory.mktemp("bao")
    port = free_port()
    addr = "http://127.0.0.1:%d" % port
    env = dict(os.environ, HOME=str(work))
    env.pop("VAULT_ADDR", None)
    with open(work / "bao.log", "wb") as log:
        proc = subprocess.Popen([binary, "server", "-dev", "-dev-root-token-id=" + BAO_TOKEN,
                                 "-dev-listen-address=127.0.0.1:%d" % port, "-dev-no-store-token"],
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(work))
    try:
        session = requests.Session()
        session.trust_env = False                 # loopback only, never a proxy

        def healthy():
            assert proc.poll() is None, "bao exited: see %s" % (work / "bao.log")
            try:
                return session.get(addr + "/v1/sys/health", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        wait_for(healthy, 30, "OpenBao at " + addr)
        kv = hvac.Client(url=addr, token=BAO_TOKEN, session=session)
        yield {"addr": addr, "kv": kv.secrets.kv.v2}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class Provider(object):
    """Stub payment provider: GET /v1/test is 200 for an accepted Bearer token, else 401."""

    def __init__(self):
        self.accepted = set()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                token = (self.headers.get("Authorization") or "")[len("Bearer "):]
                ok = self.path == "/v1/test" and token in provider.accepted
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1},
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def provider():
    p = Provider()
    try:
        yield p
    finally:
        p.stop()


@pytest.fixture(scope="module")
def emulator(tmp_path_factory, bao, provider):
    emu = K8sEmulator(tmp_path_factory.mktemp("k8s"), vault_addr=bao["addr"], vault_token=BAO_TOKEN,
                      provider_url=provider.url)
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture(scope="module")
def kube(emulator):
    """The independent checker: the official client, from the emulator's kubeconfig."""
    api = k8s_config.new_client_from_config(config_file=str(emulator.kubeconfig_path), context="emulator")

    class Kube(object):
        core = k8s_client.CoreV1Api(api)
        apps = k8s_client.AppsV1Api(api)
        custom = k8s_client.CustomObjectsApi(api)

        def secret_value(self, ns, name, key):
            data = self.core.read_namespaced_secret(name, ns).data or {}
            return base64.b64decode(data[key]).decode() if key in data else None

        def deployment(self, ns, name):
            return self.apps.read_namespaced_deployment(name, ns)

        def restarted_at(self, ns, name):
            return (self.deployment(ns, name).spec.template.metadata.annotations or {}).get(RESTARTED_AT)

        def external_secret(self, ns, name):
            return self.custom.get_namespaced_custom_object("external-secrets.io", "v1beta1", ns,
                                                            "externalsecrets", name)
    return Kube()


@pytest.fixture
def outputs():
    """Every ansible run of a test; the planted values must appear in none of them."""
    runs, planted = [], []
    yield runs, planted
    for proc in runs:
        for value in planted:
            assert value not in proc.stdout, "secret value leaked to stdout"
            assert value not in proc.stderr, "secret value leaked to stderr"


def secret_value():
    return "pgw-live-" + uuid.uuid4().hex


def namespace():
    return "payments-" + uuid.uuid4().hex[:8]


def run(outputs, args, check=False, verbosity=0, diff=False):
    result, proc = run_module(MODULE, args, check=check, diff=diff, verbosity=verbosity)
    outputs[0].append(proc)
    assert result is not None, proc.stdout[-3000:] + proc.stderr[-3000:]
    return result


# ------------------------------------------------------------------ objects

def secret_obj(ns, name, **values):
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns},
            "type": "Opaque", "stringData": values}


def deployment_obj(ns, name, secret, key, env_var="PAYMENT_API_KEY", env_from=False, replicas=2,
                   progress_deadline=None):
    container = {"name": "app", "image": "registry.example.org/%s:1.0" % name}
    if env_from:
        container["envFrom"] = [{"secretRef": {"name": secret}}]
    else:
        container["env"] = [{"name": env_var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}},
                            {"name": "APP_MODE", "value": "production"}]
    spec = {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}}}
    if progress_deadline:
        spec["progressDeadlineSeconds"] = progress_deadline
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": ns},
            "spec": spec}


def external_secret_obj(ns, name, target, key, store_path, field):
    return {"apiVersion": "external-secrets.io/v1beta1", "kind": "ExternalSecret",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"refreshInterval": "1h",
                     "secretStoreRef": {"name": "openbao", "kind": "ClusterSecretStore"},
                     "target": {"name": target, "creationPolicy": "Owner"},
                     "data": [{"secretKey": key, "remoteRef": {"key": store_path, "property": field}}]}}


def args_for(emulator, ns, value, **extra):
    args = {"credential": "payment-gateway-api", "namespace": ns, "secret": "payment-gateway-secret",
            "key": "api_key", "value": value, "deployments": ["mobile-backend"],
            "kubeconfig": str(emulator.kubeconfig_path), "context": "emulator", "wait_timeout": 30}
    args.update(extra)
    return args


# ------------------------------------------------------------------ cases

def test_direct_secret_check_change_rerun(emulator, kube, provider, outputs):
    ns, old, new = namespace(), secret_value(), secret_value()
    outputs[1].extend([old, new])
    provider.accepted.update([old, new])
    emulator.seed([
        secret_obj(ns, "payment-gateway-secret", api_key=old, region="eu-west-1"),
        deployment_obj(ns, "mobile-backend", "payment-gateway-secret", "api_key"),
        deployment_obj(ns, "mobile-worker", "payment-gateway-secret", "api_key", env_from=True, replicas=1),
    ])
    args = args_for(emulator, ns, new, deployments=["mobile-backend", "mobile-worker"])
    gen_before = {d: kube.deployment(ns, d).metadata.generation for d in args["deployments"]}

    # check mode: reports the change, changes nothing
    r = run(outputs, args, check=True, diff=True)
    assert r["changed"] is True and r["secret_changed"] is True
    assert r["restarted"] == ["mobile-backend", "mobile-worker"]
    assert kube.secret_value(ns, "payment-gateway-secret", "api_key") == old
    for d in args["deployments"]:
        assert kube.restarted_at(ns, d) is None
        assert kube.deployment(ns, d).metadata.generation == gen_before[d]

    # the change, at -vvv
    started = time.time()
    r = run(outputs, args, verbosity=3)
    assert r.get("failed") is not True, r.get("msg")
    assert r["changed"] is True and r["secret_changed"] is True
    assert r["restarted"] == ["mobile-backend", "mobile-worker"]
    assert kube.secret_value(ns, "payment-gateway-secret", "api_key") == new
    assert kube.secret_value(ns, "payment-gateway-secret", "region") == "eu-west-1"   # only that key
    for d in args["deployments"]:
        dep = kube.deployment(ns, d)
        stamp = kube.restarted_at(ns, d)
        assert stamp and stamp.endswith("Z")
        assert calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")) >= int(started) - 1
        assert dep.metadata.generation == gen_before[d] + 1
        # the module waited: the rollout is complete the moment it returned
        assert dep.status.observed_generation == dep.metadata.generation
        assert dep.status.updated_replicas == dep.status.available_replicas == dep.spec.replicas
        assert r["rollouts"][d]["ready"] is True
        assert r["rollouts"][d]["generation"] == r["rollouts"][d]["observedGeneration"] == dep.metadata.generation
    assert emulator.env(ns, "mobile-backend")["env"]["PAYMENT_API_KEY"] == new
    assert emulator.env(ns, "mobile-worker")["env"]["api_key"] == new
    provider.accepted.discard(old)                  # the old key revoked: the app still works
    assert emulator.health(ns, "mobile-backend", "PAYMENT_API_KEY") == (
        200, {"status": "healthy", "payment_gateway": "connected"})

    # the re-run: nothing to do, no second restart
    r = run(outputs, args)
    assert r["changed"] is False and r["secret_changed"] is False and r["restarted"] == []
    for d in args["deployments"]:
        assert kube.deployment(ns, d).metadata.generation == gen_before[d] + 1
    assert all(v["ready"] for v in r["rollouts"].values())


def test_missing_secret_is_created(emulator, kube, outputs):
    ns, new = namespace(), secret_value()
    outputs[1].append(new)
    args = args_for(emulator, ns, new, deployments=[])
    r = run(outputs, args, check=True)
    assert r["changed"] is True
    with pytest.raises(k8s_client.ApiException) as info:
        kube.core.read_namespaced_secret("payment-gateway-secret", ns)
    assert info.value.status == 404
    r = run(outputs, args)
    assert r["changed"] is True and r["restarted"] == []
    sec = kube.core.read_namespaced_secret("payment-gateway-secret", ns)
    assert sec.type == "Opaque" and list(sec.data) == ["api_key"]
    assert sec.metadata.annotations["credops.rotation/credential"] == "payment-gateway-api"
    assert kube.secret_value(ns, "payment-gateway-secret", "api_key") == new


def test_interrupted_run_restarts_on_the_next_run(emulator, kube, provider, outputs):
    """The Secret changed but the pods were not restarted: a re-run restarts them, once."""
    ns, old, new = namespace(), secret_value(), secret_value()
    outputs[1].extend([old, new])
    provider.accepted.update([new])
    emulator.seed([secret_obj(ns, "payment-gateway-secret", api_key=old),
                   deployment_obj(ns, "mobile-backend", "payment-gateway-secret", "api_key")])
    gen = kube.deployment(ns, "mobile-backend").metadata.generation
    r = run(outputs, args_for(emulator, ns, new, restart=False))
    assert r["secret_changed"] is True and r["restarted"] == []
    assert kube.deployment(ns, "mobile-backend").metadata.generation == gen
    # the pods still hold the old value: the app fails against the provider
    assert emulator.env(ns, "mobile-backend")["env"]["PAYMENT_API_KEY"] == old
    assert emulator.health(ns, "mobile-backend", "PAYMENT_API_KEY")[0] == 503

    r = run(outputs, args_for(emulator, ns, new))
    assert r["changed"] is True and r["secret_changed"] is False and r["restarted"] == ["mobile-backend"]
    assert kube.deployment(ns, "mobile-backend").metadata.generation == gen + 1
    assert emulator.health(ns, "mobile-backend", "PAYMENT_API_KEY")[0] == 200

    r = run(outputs, args_for(emulator, ns, new))
    assert r["changed"] is False and r["restarted"] == []
    assert kube.deployment(ns, "mobile-backend").metadata.generation == gen + 1


def test_external_secret_force_sync(emulator, kube, bao, provider, outputs):
    ns, old, new = namespace(), secret_value(), secret_value()
    outputs[1].extend([old, new])
    provider.accepted.update([old, new])
    path = "api-credentials/payment-gateway-api-" + ns
    bao["kv"].create_or_update_secret(path=path, secret={"api_key": old, "key_id": "k1"}, mount_point="secret")
    emulator.seed([external_secret_obj(ns, "payment-gateway-secret", "payment-gateway-secret", "api_key",
                                       path, "api_key")], wait=False)
    wait_for(lambda: _holds(kube, ns, old), 15, "initial ExternalSecret sync")
    emulator.seed([deployment_obj(ns, "mobile-backend", "payment-gateway-secret", "api_key")])
    gen = kube.deployment(ns, "mobile-backend").metadata.generation
    # the store step of the rotation: a new KV version
    bao["kv"].create_or_update_secret(path=path, secret={"api_key": new, "key_id": "k2"}, mount_point="secret")
    args = args_for(emulator, ns, new, external_secret="payment-gateway-secret")
    del args["secret"]

    r = run(outputs, args, check=True)
    assert r["changed"] is True and r["secret_changed"] is True and r["restarted"] == ["mobile-backend"]
    es = kube.external_secret(ns, "payment-gateway-secret")
    assert "force-sync" not in (es["metadata"].get("annotations") or {})
    assert kube.secret_value(ns, "payment-gateway-secret", "api_key") == old
    assert kube.deployment(ns, "mobile-backend").metadata.generation == gen

    before = int(time.time())
    r = run(outputs, args)
    assert r.get("failed") is not True, r.get("msg")
    assert r["changed"] is True and r["secret_changed"] is True and r["restarted"] == ["mobile-backend"]
    assert r["secret"] == "payment-gateway-secret"
    es = kube.external_secret(ns, "payment-gateway-secret")
    stamp = es["metadata"]["annotations"]["force-sync"]
    assert stamp.isdigit() and int(stamp) >= before - 1
    assert es["status"]["refreshTime"]
    assert [c["status"] for c in es["status"]["conditions"] if c["type"] == "Ready"] == ["True"]
    assert kube.secret_value(ns, "payment-gateway-secret", "api_key") == new
    assert kube.restarted_at(ns, "mobile-backend")
    dep = kube.deployment(ns, "mobile-backend")
    assert dep.metadata.generation == gen + 1 == dep.status.observed_generation
    assert emulator.env(ns, "mobile-backend")["env"]["PAYMENT_API_KEY"] == new

    r = run(outputs, args)
    assert r["changed"] is False and r["restarted"] == []
    assert kube.external_secret(ns, "payment-gateway-secret")["metadata"]["annotations"]["force-sync"] == stamp
    assert kube.deployment(ns, "mobile-backend").metadata.generation == gen + 1


def _holds(kube, ns, value):
    try:
        return kube.secret_value(ns, "payment-gateway-secret", "api_key") == value
    except k8s_client.ApiException:
        return False


def test_external_secret_without_the_new_value_fails_clearly(emulator, kube, bao, outputs):
    ns, old, new = namespace(), secret_value(), secret_value()
    outputs[1].extend([old, new])
    path = "api-credentials/stale-" + ns
    bao["kv"].create_or_update_secret(path=path, secret={"api_key": old}, mount_point="secret")
    emulator.seed([external_secret_obj(ns, "payment-gateway-secret", "payment-gateway-secret", "api_key",
                                       path, "api_key"),
                   deployment_obj(ns, "mobile-backend", "payment-gateway-secret", "api_key")])
    gen = kube.deployment(ns, "mobile-backend").metadata.generation
    args = args_for(emulator, ns, new, external_secret="payment-gateway-secret", wait_timeout=3)
    r = run(outputs, args)
    assert r["failed"] is True
    assert "credential 'payment-gateway-api', step deploy" in r["msg"]
    assert "does not hold the new value 3s after forcing a sync of ExternalSecret payment-gateway-secret" in r["msg"]
    assert path + "#api_key" in r["msg"] and "Fix:" in r["msg"]
    assert r["restarted"] == []
    assert kube.deployment(ns, "mobile-backend").metadata.generation == gen
    assert kube.secret_value(ns, "payment-gateway-secret", "api_key") == old


def test_rollout_that_never_completes_fails_at_the_deadline(emulator, kube, provider, outputs):
    ns, old, new = namespace(), secret_value(), secret_value()
    outputs[1].extend([old, new])
    provider.accepted.update([new])
    emulator.seed([secret_obj(ns, "payment-gateway-secret", api_key=old),
                   deployment_obj(ns, "mobile-backend", "payment-gateway-secret", "api_key")])
    emulator.set_stuck(ns, "mobile-backend")
    started = time.monotonic()
    r = run(outputs, args_for(emulator, ns, new, wait_timeout=4))
    elapsed = time.monotonic() - started
    assert r["failed"] is True
    assert "rollout of Deployment %s/mobile-backend not complete after 4s" % ns in r["msg"]
    assert "new replicas have been updated" in r["msg"]
    assert "rollout status deployment/mobile-backend" in r["msg"]
    assert elapsed < 4 + 20                           # the module's deadline, plus ansible's start-up
    # what already happened is reported, and is true
    assert r["changed"] is True and r["secret_changed"] is True and r["restarted"] == ["mobile-backend"]
    assert kube.secret_value(ns, "payment-gateway-secret", "api_key") == new
    dep = kube.deployment(ns, "mobile-backend")
    assert dep.status.observed_generation == dep.metadata.generation
    assert dep.status.updated_replicas < dep.spec.replicas
    # the window: the old pods still run with the old value
    assert emulator.env(ns, "mobile-backend")["env"]["PAYMENT_API_KEY"] == old
    assert emulator.health(ns, "mobile-backend", "PAYMENT_API_KEY")[0] == 503


def test_progress_deadline_exceeded_fails_without_waiting(emulator, kube, outputs):
    ns, old, new = namespace(), secret_value(), secret_value()
    outputs[1].extend([old, new])
    emulator.seed([secret_obj(ns, "payment-gateway-secret", api_key=old),
                   deployment_obj(ns, "mobile-backend", "payment-gateway-secret", "api_key",
                                  progress_deadline=1)])
    emulator.set_stuck(ns, "mobile-backend")
    started = time.monotonic()
    r = run(outputs, args_for(emulator, ns, new, wait_timeout=120))
    assert r["failed"] is True
    assert "exceeded its progress deadline" in r["msg"] and "mobile-backend" in r["msg"]
    assert time.monotonic() - started < 30            # far from the 120 s wait_timeout
    conds = {c.type: c.reason for c in kube.deployment(ns, "mobile-backend").status.conditions}
    assert conds["Progressing"] == "ProgressDeadlineExceeded"


def test_unknown_deployment_fails_in_check_mode(emulator, kube, outputs):
    ns, old, new = namespace(), secret_value(), secret_value()
    outputs[1].extend([old, new])
    emulator.seed([secret_obj(ns, "payment-gateway-secret", api_key=old)])
    r = run(outputs, args_for(emulator, ns, new, deployments=["mobile-backnd"]), check=True)
    assert r["failed"] is True
    assert "Deployment %s/mobile-backnd" % ns in r["msg"] and "HTTP 404" in r["msg"]
    assert "kubectl -n %s get deployments" % ns in r["msg"]
    assert kube.secret_value(ns, "payment-gateway-secret", "api_key") == old


def test_rejected_token_names_the_fix(emulator, kube, outputs):
    ns, new, token = namespace(), secret_value(), "wrong-token-" + uuid.uuid4().hex
    outputs[1].extend([new, token])
    r = run(outputs, args_for(emulator, ns, new, api_key=token))
    assert r["failed"] is True
    assert "HTTP 401" in r["msg"] and "credentials" in r["msg"] and "step deploy" in r["msg"]
