"""The dependency map, the grep parsing of discover_consumers and the drift computation."""
import pytest

from ansible_collections.credops.rotation.plugins.filter import rotation as filters
from ansible_collections.credops.rotation.plugins.module_utils._inventory import depmap
from ansible_collections.credops.rotation.plugins.module_utils._inventory import drift as drift_map
from ansible_collections.credops.rotation.plugins.modules.k8s_discover import deployment_references

GROUPS = {"all": ["web1", "web2", "batch1", "prod-cluster"], "ungrouped": ["prod-cluster"],
          "web": ["web1", "web2"], "batch": ["batch1"], "workers": ["batch1", "web2"]}


def systemd(name, hosts, env_var, env_file="/etc/application/environment", service="application.service"):
    return {"name": name, "kind": "systemd", "hosts": hosts, "env_file": env_file, "env_var": env_var,
            "service": service}


def kube(name, deployments, secret="payment-gateway-secret", namespace="payments", cluster="prod-cluster"):
    return {"name": name, "kind": "kubernetes", "cluster": cluster, "namespace": namespace, "secret": secret,
            "deployments": deployments}


CREDENTIALS = {
    "payment-gateway-api": {"type": "api_key", "consumers": [
        systemd("web-app", "web", "PAYMENT_API_KEY"),
        kube("mobile-backend", ["mobile-backend"]),
        {"name": "batch-processor", "kind": "batch", "hosts": "batch"},
    ]},
    "billing-db": {"type": "database", "consumers": [
        systemd("billing", ["web1", "workers"], "DB_PASSWORD", "/etc/billing/env", "billing.service"),
    ]},
}


def test_dependency_map_expands_groups_both_ways():
    dep = depmap.dependency_map(CREDENTIALS, GROUPS)
    pay = dep["credentials"]["payment-gateway-api"]
    assert [c["hosts"] for c in pay["consumers"]] == [["web1", "web2"], ["prod-cluster"], ["batch1"]]
    assert pay["hosts"] == ["web1", "web2", "prod-cluster", "batch1"]
    assert pay["consumers"][0] == {"name": "web-app", "kind": "systemd", "hosts": ["web1", "web2"],
                                   "env_file": "/etc/application/environment", "env_var": "PAYMENT_API_KEY",
                                   "service": "application.service"}
    assert pay["consumers"][1]["deployments"] == ["mobile-backend"]
    # a host listed directly and through a group appears once
    assert dep["credentials"]["billing-db"]["hosts"] == ["web1", "batch1", "web2"]
    assert dep["hosts"]["web2"] == {
        "credentials": ["billing-db", "payment-gateway-api"],
        "consumers": [{"credential": "billing-db", "consumer": "billing", "kind": "systemd"},
                      {"credential": "payment-gateway-api", "consumer": "web-app", "kind": "systemd"}]}
    assert dep["hosts"]["prod-cluster"]["credentials"] == ["payment-gateway-api"]
    assert sorted(dep["hosts"]) == ["batch1", "prod-cluster", "web1", "web2"]


def test_dependency_map_without_groups_takes_names_as_hosts():
    dep = depmap.dependency_map(CREDENTIALS)
    assert dep["credentials"]["payment-gateway-api"]["consumers"][0]["hosts"] == ["web"]


def test_dependency_map_tolerates_broken_records():
    dep = depmap.dependency_map({"a": None, "b": {"consumers": "x"}, "c": {"consumers": [None, {"kind": "batch"}]}})
    assert dep["credentials"]["a"]["consumers"] == [] and dep["credentials"]["c"]["consumers"][0]["hosts"] == []


def test_filters_wrap_the_same_code():
    assert filters.dependency_map(CREDENTIALS, GROUPS) == depmap.dependency_map(CREDENTIALS, GROUPS)
    assert filters.env_var_names(CREDENTIALS) == ["DB_PASSWORD", "PAYMENT_API_KEY"]
    assert filters.kubernetes_targets(CREDENTIALS) == {"prod-cluster": {"payments": ["payment-gateway-secret"]}}


def test_graph_layout_three_columns_most_urgent_first():
    dep = depmap.dependency_map(CREDENTIALS, GROUPS)
    rows = [{"credential": "billing-db", "status": "overdue"}, {"credential": "payment-gateway-api", "status": "ok"}]
    graph = filters.dependency_graph(dep, rows)
    creds = [n for n in graph["nodes"] if n["column"] == "credential"]
    assert [n["label"] for n in creds] == ["billing-db", "payment-gateway-api"]
    assert creds[0]["status"] == "overdue" and creds[0]["y"] < creds[1]["y"]
    hosts = [n["label"] for n in graph["nodes"] if n["column"] == "host"]
    assert sorted(hosts) == ["batch1", "prod-cluster", "web1", "web2"]  # each host drawn once
    assert len(graph["edges"]) == 4 + 3 + 4  # credential->consumer 4; consumer->host: billing 3, payment 4
    assert all(e["x1"] < e["x2"] for e in graph["edges"])
    assert filters.dependency_graph(dep, rows, limit=1)["omitted"] == 1


# --- discover_consumers: grep output -> references ---------------------------------------------

ENV_GREP = """/etc/application/environment:PAYMENT_API_KEY
/etc/default/batch:PAYMENT_API_KEY
/etc/billing/env:DB_PASSWORD
/etc/odd:not a var
"""
UNIT_ENV_FILES = """/etc/systemd/system/application.service:EnvironmentFile=/etc/application/environment
/lib/systemd/system/billing.service:EnvironmentFile=-/etc/billing/env
/etc/systemd/system/billing.service.d/override.conf:EnvironmentFile="/etc/billing/extra" /etc/billing/env
/etc/systemd/system/tmpl@.service:EnvironmentFile=/etc/tmpl/%i.env
"""
UNIT_ENV_GREP = """/etc/systemd/system/legacy.service:PAYMENT_API_KEY
"""


def test_systemd_references_map_files_to_units():
    refs = drift_map.systemd_references(ENV_GREP, UNIT_ENV_FILES, UNIT_ENV_GREP)
    assert refs == [
        {"env_var": "DB_PASSWORD", "file": "/etc/billing/env", "units": ["billing.service"]},
        {"env_var": "PAYMENT_API_KEY", "file": "/etc/application/environment", "units": ["application.service"]},
        {"env_var": "PAYMENT_API_KEY", "file": "/etc/default/batch", "units": []},
        {"env_var": "PAYMENT_API_KEY", "file": "/etc/systemd/system/legacy.service", "units": ["legacy.service"]},
    ]


def test_unit_environment_files_and_unit_names():
    assert drift_map.unit_environment_files(UNIT_ENV_FILES) == [
        "/etc/application/environment", "/etc/billing/env", "/etc/billing/extra"]
    assert drift_map.unit_name("/etc/systemd/system/x.service.d/10-env.conf") == "x.service"
    assert drift_map.unit_name("/lib/systemd/system/x.service") == "x.service"
    assert drift_map.systemd_references("", "", "") == []


# --- drift, both ways ---------------------------------------------------------------------------

def found(*refs):
    return [{"env_var": v, "file": f, "units": list(u)} for v, f, u in refs]


APP = ("PAYMENT_API_KEY", "/etc/application/environment", ["application.service"])
BILL = ("DB_PASSWORD", "/etc/billing/env", ["billing.service"])


@pytest.mark.parametrize("case,systemd_found,expect", [
    ("all listed, all found",
     {"web1": found(APP, BILL), "web2": found(APP, BILL), "batch1": found(BILL)},
     {"unlisted": [], "missing": [], "mismatched": []}),
    ("an unlisted file on a listed host",
     {"web1": found(APP, BILL, ("PAYMENT_API_KEY", "/etc/cron/env", [])), "web2": found(APP, BILL),
      "batch1": found(BILL)},
     {"unlisted": [("web1", "PAYMENT_API_KEY", "/etc/cron/env")], "missing": [], "mismatched": []}),
    ("an unlisted host holds the variable",
     {"web1": found(APP, BILL), "web2": found(APP, BILL), "batch1": found(BILL, APP)},
     {"unlisted": [("batch1", "PAYMENT_API_KEY", "/etc/application/environment")], "missing": [], "mismatched": []}),
    ("a listed consumer is gone",
     {"web1": found(APP, BILL), "web2": found(BILL), "batch1": found(BILL)},
     {"unlisted": [], "missing": [("web2", "PAYMENT_API_KEY", "/etc/application/environment")], "mismatched": []}),
    ("the listed service no longer loads the file",
     {"web1": found(("PAYMENT_API_KEY", "/etc/application/environment", ["new.service"]), BILL),
      "web2": found(APP, BILL), "batch1": found(BILL)},
     {"unlisted": [], "missing": [], "mismatched": [("web1", "PAYMENT_API_KEY", "/etc/application/environment")]}),
])
def test_systemd_drift_both_ways(case, systemd_found, expect):
    drift = drift_map.consumer_drift(CREDENTIALS, GROUPS, systemd_found,
                                     {"prod-cluster": [{"namespace": "payments", "deployment": "mobile-backend",
                                                        "secret": "payment-gateway-secret", "via": "envFrom"}]})
    for key in ("unlisted", "missing", "mismatched"):
        assert [(d["host"], d["env_var"], d["file"]) for d in drift[key]] == expect[key], (case, key, drift[key])
    assert drift["not_scanned"] == []


def test_drift_messages_name_credential_and_fix_direction():
    drift = drift_map.consumer_drift(CREDENTIALS, GROUPS,
                                     {"web1": found(APP, BILL, ("PAYMENT_API_KEY", "/etc/cron/env", ["cron.service"])),
                                      "web2": found(BILL)}, {})
    assert drift["unlisted"][0]["message"] == ("host web1: /etc/cron/env sets PAYMENT_API_KEY (units: cron.service) "
                                               "but no consumer of payment-gateway-api lists it")
    assert drift["unlisted"][0]["credentials"] == ["payment-gateway-api"]
    assert drift["missing"][0]["message"] == ("payment-gateway-api.web-app on web2: /etc/application/environment "
                                              "does not set PAYMENT_API_KEY (file gone, or the consumer moved)")
    # batch1 and the cluster were not scanned: nothing is claimed about them
    assert drift["not_scanned"] == [{"kind": "kubernetes", "host": "prod-cluster"}, {"kind": "systemd", "host": "batch1"}]


@pytest.mark.parametrize("case,k8s_found,unlisted,missing", [
    ("listed and found", [("payments", "mobile-backend", "payment-gateway-secret")], [], []),
    ("a second deployment uses the secret",
     [("payments", "mobile-backend", "payment-gateway-secret"), ("payments", "reports", "payment-gateway-secret")],
     [("payments", "reports")], []),
    ("the listed deployment no longer uses it", [("payments", "mobile-backend", "other-secret")],
     [("payments", "mobile-backend")], [("payments", "mobile-backend")]),
    ("nothing found", [], [], [("payments", "mobile-backend")]),
])
def test_kubernetes_drift_both_ways(case, k8s_found, unlisted, missing):
    refs = [{"namespace": n, "deployment": d, "secret": s, "via": "envFrom in container app"} for n, d, s in k8s_found]
    drift = drift_map.consumer_drift(CREDENTIALS, GROUPS, {}, {"prod-cluster": refs})
    assert [(d["namespace"], d["deployment"]) for d in drift["unlisted"]] == unlisted, case
    assert [(d["namespace"], d["deployment"]) for d in drift["missing"]] == missing, case


def test_kubernetes_unlisted_message():
    refs = [{"namespace": "payments", "deployment": "reports", "secret": "payment-gateway-secret",
             "via": "env API_KEY in container app"}]
    drift = drift_map.consumer_drift(CREDENTIALS, GROUPS, {}, {"prod-cluster": refs})
    assert drift["unlisted"][0]["message"] == (
        "deployment payments/reports on prod-cluster uses Secret payment-gateway-secret (env API_KEY in container app) "
        "but no consumer of payment-gateway-api lists it")


def test_deployment_references_every_way_a_pod_uses_a_secret():
    dep = {"metadata": {"name": "app"}, "spec": {"template": {"spec": {
        "initContainers": [{"name": "init", "envFrom": [{"secretRef": {"name": "s1"}}]}],
        "containers": [
            {"name": "app", "env": [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "s1", "key": "k"}}},
                                    {"name": "PLAIN", "value": "x"},
                                    {"name": "CM", "valueFrom": {"configMapKeyRef": {"name": "s1"}}}],
             "envFrom": [{"configMapRef": {"name": "s1"}}, {"secretRef": {"name": "other"}}]}],
        "volumes": [{"name": "tls", "secret": {"secretName": "s1"}},
                    {"name": "proj", "projected": {"sources": [{"secret": {"name": "s1"}}, {"configMap": {"name": "s1"}}]}}],
    }}}}
    assert deployment_references(dep, ["s1"]) == [
        ("s1", "envFrom in container init"), ("s1", "env API_KEY in container app"),
        ("s1", "volume tls"), ("s1", "projected volume proj")]
    assert deployment_references(dep, ["nope"]) == [] and deployment_references({}, ["s1"]) == []
