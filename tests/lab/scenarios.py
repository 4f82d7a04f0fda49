"""Credentials of the lab, in the contract's shape, and their starting state.

The demo and the integration tests share these, so what `make demo` shows is what the
suite proves.
"""
import hvac

KV_MOUNT = "secret"


def api_key_record(lab, name="payment-gateway-api", group="web", k8s=False, batch_group=None,
                   verify_json=True, risk="high", namespace="payments"):
    """A rest-issued API key in OpenBao KV v2, consumed by systemd hosts (and optionally k8s/batch)."""
    consumers = [{
        "name": "web-app", "kind": "systemd", "hosts": group,
        "env_file": "/etc/application/environment", "env_var": "PAYMENT_API_KEY",
        "service": "payment-app.service",
        "verify": {"url": "http://{{ ansible_host }}:8080/health/payment-integration", "status": 200},
    }]
    if verify_json:
        consumers[0]["verify"]["json"] = {"payment_gateway": "connected"}
    if k8s:
        consumers.append({
            "name": "mobile-backend", "kind": "kubernetes", "cluster": "lab-cluster",
            "namespace": namespace, "secret": "payment-gateway-secret", "secret_key": "PAYMENT_API_KEY",
            "deployments": ["mobile-backend"],
            "verify": {"url": lab.k8s.url + "/_emulator/namespaces/%s/deployments/mobile-backend/health"
                                            "?var=PAYMENT_API_KEY" % namespace,
                       "json": {"payment_gateway": "connected"}}})
    if batch_group:
        consumers.append({"name": "batch-processor", "kind": "batch", "hosts": batch_group})
    return {
        "type": "api_key", "risk": risk, "rotation_contact": "payments-team@example.org",
        "issuer": {
            "kind": "rest", "base_url": lab.provider.url,
            "auth": {"type": "bearer", "token": "{{ lookup('ansible.builtin.env', 'PROVIDER_ADMIN_TOKEN') }}"},
            "create": {"method": "POST", "path": "/v1/api-keys",
                       "body": {"name": "production-integration", "permissions": ["read", "write"]},
                       "expect_status": [200, 201], "secret_path": "api_key", "id_path": "id"},
            "revoke": {"method": "DELETE", "path": "/v1/api-keys/{id}"},
            "test": {"method": "GET", "path": "/v1/test", "header": "Authorization", "format": "Bearer {secret}"},
            "usage": {"method": "GET", "path": "/v1/audit-log?api_key_id={id}&since={since}",
                      "events_path": "entries", "time_path": "timestamp", "source_path": "source_ip"},
        },
        "store": {"kind": "vault_kv2", "url": "{{ vault_addr }}", "mount": KV_MOUNT,
                  "path": "api-credentials/" + name, "field": "api_key"},
        "consumers": consumers,
    }


def seed_api_key(lab, name="payment-gateway-api", hosts=None, k8s=False, namespace="payments"):
    """The state before the first rotation: a live key at the provider, in the store, on consumers."""
    key_id, secret = lab.provider.create_key("initial-" + name)
    client = hvac.Client(url=lab.openbao.addr, token=lab.openbao.token)
    client.secrets.kv.v2.create_or_update_secret(
        path="api-credentials/" + name, mount_point=KV_MOUNT,
        secret={"api_key": secret, "key_id": key_id})
    for host in hosts if hosts is not None else lab.hosts:
        lab.install_consumer(host, secret)
    if k8s:
        import base64
        b64 = base64.b64encode(secret.encode()).decode()
        lab.k8s.seed([
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "payment-gateway-secret",
                                                                "namespace": namespace},
             "type": "Opaque", "data": {"PAYMENT_API_KEY": b64}},
            {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "mobile-backend", "namespace": namespace},
             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "mobile-backend"}},
                      "template": {"metadata": {"labels": {"app": "mobile-backend"}},
                                   "spec": {"containers": [{"name": "app", "image": "mobile-backend:1",
                                                            "envFrom": [{"secretRef": {"name": "payment-gateway-secret"}}]}]}}}},
        ])
    return key_id, secret


def kv_read(lab, name):
    client = hvac.Client(url=lab.openbao.addr, token=lab.openbao.token)
    data = client.secrets.kv.v2.read_secret_version(path="api-credentials/" + name, mount_point=KV_MOUNT,
                                                    raise_on_deleted_version=True)["data"]
    meta = client.secrets.kv.v2.read_secret_metadata(path="api-credentials/" + name, mount_point=KV_MOUNT)["data"]
    return data["data"], meta
