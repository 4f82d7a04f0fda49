"""Pure logic of the Kubernetes consumer: rollout decisions, restart bookkeeping, errors.

No cluster and no network: the rollout wait is driven by a fake AppsV1Api and a fake clock.
"""
import base64
import json

import pytest
import yaml
from kubernetes import client as k8s_client
from kubernetes.client.rest import ApiException

from ansible_collections.credops.rotation.plugins.doc_fragments.kubernetes import ModuleDocFragment
from ansible_collections.credops.rotation.plugins.module_utils._consumers import kubernetes as kc
from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._time import unix_seconds as parse_rfc3339
from ansible_collections.credops.rotation.plugins.modules import kubernetes_consumer as module


def deployment(generation=2, observed=2, replicas=3, status_replicas=3, updated=3, available=3,
               progressing_reason="NewReplicaSetAvailable", spec_replicas=True):
    spec = {"replicas": replicas} if spec_replicas else {}
    status = {"observedGeneration": observed, "replicas": status_replicas, "updatedReplicas": updated,
              "availableReplicas": available}
    if progressing_reason:
        status["conditions"] = [{"type": "Progressing", "status": "True", "reason": progressing_reason}]
    return {"metadata": {"name": "web", "generation": generation}, "spec": spec, "status": status}


# ---------------------------------------------------------------- kubectl rollout status

@pytest.mark.parametrize("dep, done, failed, says", [
    (deployment(), True, False, "successfully rolled out"),
    (deployment(generation=3, observed=2), False, False, "spec update to be observed"),
    (deployment(generation=3, observed=4), True, False, "successfully rolled out"),
    (deployment(updated=1, status_replicas=4), False, False, "1 out of 3 new replicas"),
    (deployment(status_replicas=4), False, False, "1 old replicas are pending termination"),
    (deployment(available=2), False, False, "2 of 3 updated replicas are available"),
    (deployment(progressing_reason="ProgressDeadlineExceeded", updated=1), False, True, "progress deadline"),
    (deployment(generation=3, observed=2, progressing_reason="ProgressDeadlineExceeded"), False, False,
     "spec update to be observed"),
    (deployment(replicas=0, status_replicas=0, updated=0, available=0), True, False, "successfully"),
    (deployment(spec_replicas=False, status_replicas=2, updated=2, available=2), True, False, "successfully"),
    ({"metadata": {"name": "web", "generation": 1}, "spec": {"replicas": 1}}, False, False, "observed"),
], ids=["complete", "generation-lags", "observed-ahead", "updating", "old-pending", "unavailable",
        "deadline", "deadline-but-stale", "scaled-to-zero", "no-spec-replicas", "no-status"])
def test_rollout_status_decides_like_kubectl(dep, done, failed, says):
    got_done, got_failed, message = kc.rollout_status(dep)
    assert (got_done, got_failed) == (done, failed)
    assert says in message


def test_rollout_summary_is_the_returned_shape():
    summary = kc.rollout_summary(deployment(generation=5, observed=5))
    assert summary == {"generation": 5, "observedGeneration": 5, "replicas": 3, "updatedReplicas": 3,
                       "availableReplicas": 3, "ready": True, "failed": False,
                       "message": "deployment web successfully rolled out"}


# ---------------------------------------------------------------- restart bookkeeping

def test_restart_patch_is_what_kubectl_sends():
    assert kc.restart_patch(1723717800) == {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": "2024-08-15T10:30:00Z"}}}}}


@pytest.mark.parametrize("text, expected", [
    ("2024-08-15T10:30:00Z", 1723717800),
    ("2024-08-15T10:30:00.123456Z", 1723717800),
    ("2024-08-15T12:30:00+02:00", 1723717800),
    ("2024-08-15T05:30:00-05:00", 1723717800),
    ("", None), (None, None), ("yesterday", None), ("2024-08-15T10:30:00+bad", None),
])
def test_parse_rfc3339(text, expected):
    assert parse_rfc3339(text) == expected


def dep_times(restarted_at=None, created="2024-08-01T00:00:00Z"):
    tmpl = {"metadata": {"annotations": {kc.RESTARTED_AT: restarted_at}}} if restarted_at else {}
    return {"metadata": {"creationTimestamp": created}, "spec": {"template": tmpl}}


T = 1723717800  # 2024-08-15T10:30:00Z


@pytest.mark.parametrize("dep, changed_at, pending", [
    (dep_times(), None, False),                                   # nothing recorded: leave it
    (dep_times(), T, True),                                       # never restarted since the change
    (dep_times("2024-08-15T10:29:59Z"), T, True),                 # restarted before the change
    (dep_times("2024-08-15T10:30:00Z"), T, False),                # same second: done
    (dep_times("2024-08-15T10:31:00Z"), T, False),                # restarted after
    (dep_times(created="2024-08-16T00:00:00Z"), T, False),        # created after the change
    (dep_times(created="2024-08-15T10:30:00Z"), T, True),         # created that second: unsure
    (dep_times("2024-08-15T10:00:00Z", created="2024-08-16T00:00:00Z"), T, False),
    ({"metadata": {}, "spec": {}}, T, True),                      # no times at all: restart
], ids=["no-record", "never-restarted", "restarted-before", "same-second", "restarted-after",
        "created-after", "created-same-second", "odd-restart-but-created-after", "no-times"])
def test_restart_pending(dep, changed_at, pending):
    assert kc.restart_pending(dep, changed_at) is pending


@pytest.mark.parametrize("previous, now, expected", [
    (None, 1000.7, "1000"), ("999", 1000, "1000"), ("1000", 1000, "1001"), ("2000", 1000, "2001"),
    ("not-a-number", 1000, "1000"),
])
def test_next_force_sync_always_changes(previous, now, expected):
    assert kc.next_force_sync(previous, now) == expected


def b64(text):
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize("data, holds", [
    ({"api_key": b64("s3cret")}, True),
    ({"api_key": b64("s3cret "), "x": b64("s3cret")}, False),
    ({"other": b64("s3cret")}, False),
    ({}, False), (None, False),
    ({"api_key": "%%%not-base64"}, False),
])
def test_secret_holds_compares_decoded_values(data, holds):
    assert kc.secret_holds(data, "api_key", "s3cret") is holds


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("status, fix_says", [
    (401, "credentials"), (403, "RBAC"), (404, "names"), (409, "run again"), (500, "kubectl"),
])
def test_api_errors_name_credential_step_and_fix_without_the_value(status, fix_says):
    exc = ApiException(status=status, reason="Reason")
    exc.body = json.dumps({"kind": "Status", "message": "echoing s3cret-value back"})
    err = kc.to_rotation_error(exc, "payment-gateway-api", "deploy", "writing key 'k' of Secret ns/s",
                               secrets=["s3cret-value"])
    text = str(err)
    assert isinstance(err, RotationError)
    assert text.startswith("credential 'payment-gateway-api', step deploy: writing key 'k'")
    assert "HTTP %d" % status in text and fix_says in text
    assert "s3cret-value" not in text


def test_connection_errors_point_at_the_connection_settings():
    err = kc.to_rotation_error(ConnectionRefusedError(111, "refused"), "c", "deploy", "reading x")
    assert "cannot reach the Kubernetes API" in str(err) and "kubeconfig" in err.fix


def test_host_and_api_key_build_a_client_without_kubeconfig():
    api = kc.api_client_from_options({"host": "https://127.0.0.1:6443", "api_key": "tok",
                                      "validate_certs": False, "ca_cert": None}, credential="c")
    cfg = api.configuration
    assert cfg.host == "https://127.0.0.1:6443" and cfg.verify_ssl is False
    assert cfg.auth_settings()["BearerToken"]["value"] == "Bearer tok"


def test_api_key_overrides_the_kubeconfig_token(tmp_path):
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "lab",
        "clusters": [{"name": "lab", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "lab", "user": {"token": "from-kubeconfig"}}],
        "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}]}))
    plain = kc.api_client_from_options({"kubeconfig": str(kubeconfig)}).configuration
    assert plain.auth_settings()["BearerToken"]["value"] == "Bearer from-kubeconfig"
    cfg = kc.api_client_from_options({"kubeconfig": str(kubeconfig), "context": "lab",
                                      "api_key": "override"}).configuration
    assert cfg.auth_settings()["BearerToken"]["value"] == "Bearer override"   # also after the refresh hook
    assert cfg.host == "https://127.0.0.1:6443"


def test_bad_kubeconfig_is_a_connect_error(tmp_path):
    with pytest.raises(RotationError) as info:
        kc.api_client_from_options({"kubeconfig": str(tmp_path / "missing.yaml")}, credential="c")
    assert info.value.step == "connect" and info.value.credential == "c"


# ---------------------------------------------------------------- the deadline, with a fake clock

class FakeClock(object):
    def __init__(self):
        self.now, self.sleeps = 0.0, 0

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        assert seconds > 0
        self.sleeps += 1
        self.now += seconds


class FakeApps(object):
    """read_namespaced_deployment answers from a list of states (the last one repeats)."""

    def __init__(self, states):
        self.states, self.reads = list(states), 0

    def read_namespaced_deployment(self, name, namespace):
        self.reads += 1
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


def consumer_with(states, clock):
    consumer = kc.KubernetesConsumer(k8s_client.ApiClient(k8s_client.Configuration()), "cred", "ns",
                                     sleep=clock.sleep, monotonic=clock.monotonic)
    consumer.apps = FakeApps(states)
    return consumer


def test_wait_rollouts_returns_once_complete():
    clock = FakeClock()
    consumer = consumer_with([deployment(generation=3, observed=2), deployment(updated=1, status_replicas=4),
                              deployment(generation=3, observed=3)], clock)
    result = consumer.wait_rollouts(["web"], timeout=10)
    assert result["web"]["ready"] is True and clock.now == pytest.approx(1.0)


def test_wait_rollouts_stops_at_the_deadline_with_a_clear_message():
    clock = FakeClock()
    consumer = consumer_with([deployment(updated=1, status_replicas=4)], clock)
    with pytest.raises(RotationError) as info:
        consumer.wait_rollouts(["web"], timeout=7)
    assert clock.now == pytest.approx(7.0) and clock.sleeps == 14       # bounded: 7 s / 0.5 s
    text = str(info.value)
    assert "Deployment ns/web not complete after 7s" in text and "1 out of 3 new replicas" in text
    assert "rollout status deployment/web" in info.value.fix


def test_wait_rollouts_fails_at_once_on_progress_deadline():
    clock = FakeClock()
    consumer = consumer_with([deployment(updated=1, progressing_reason="ProgressDeadlineExceeded")], clock)
    with pytest.raises(RotationError, match="exceeded its progress deadline"):
        consumer.wait_rollouts(["web"], timeout=600)
    assert clock.now == 0.0


# ---------------------------------------------------------------- docs and argspec agree

def test_doc_fragment_mirrors_the_connection_argspec():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    assert set(documented) == set(kc.KUBERNETES_CONNECTION_ARGSPEC)
    for name, spec in kc.KUBERNETES_CONNECTION_ARGSPEC.items():
        assert documented[name]["type"] == spec["type"], name
        assert documented[name].get("aliases", []) == spec.get("aliases", []), name


def test_module_documents_exactly_its_own_options():
    documented = yaml.safe_load(module.DOCUMENTATION)["options"]
    spec = module.argument_spec()
    own = {k: v for k, v in spec.items() if k not in kc.KUBERNETES_CONNECTION_ARGSPEC}
    assert set(documented) == set(own)
    for name, opt in own.items():
        assert documented[name]["type"] == opt["type"], name
        assert documented[name].get("default") == opt.get("default"), name
        assert bool(documented[name].get("required")) == bool(opt.get("required")), name
    assert spec["value"]["no_log"] is True and spec["api_key"]["no_log"] is True
