"""The lab itself works: each real service answers through an independent client."""
import pytest

pytestmark = pytest.mark.lab


def test_openbao_kv2_pki_and_audit(hvac_client, openbao):
    assert hvac_client.is_authenticated()
    hvac_client.secrets.kv.v2.create_or_update_secret(
        path="lab/selftest", secret={"value": "lab-selftest-value"}, mount_point="secret")
    read = hvac_client.secrets.kv.v2.read_secret_version(
        path="lab/selftest", mount_point="secret", raise_on_deleted_version=True)
    assert read["data"]["data"]["value"] == "lab-selftest-value"
    cert = hvac_client.secrets.pki.generate_certificate(
        name="lab", common_name="svc.lab.test", extra_params={"ttl": "1h"}, mount_point="pki")
    assert cert["data"]["serial_number"]
    # The file audit device records the KV path (values are HMAC'd by the server).
    log = openbao.audit_log.read_text()
    assert "secret/data/lab/selftest" in log
    assert "lab-selftest-value" not in log


def test_moto_iam_and_secrets_manager(moto):
    iam = moto.client("iam")
    iam.create_user(UserName="lab-selftest")
    key = iam.create_access_key(UserName="lab-selftest")["AccessKey"]
    assert key["Status"] == "Active"
    sm = moto.client("secretsmanager")
    sm.create_secret(Name="lab-selftest", SecretString="v1")
    sm.put_secret_value(SecretId="lab-selftest", SecretString="v2", VersionStages=["AWSPENDING"])
    stages = dict(sm.describe_secret(SecretId="lab-selftest")["VersionIdsToStages"].items())
    assert sorted(sum(stages.values(), [])) == ["AWSCURRENT", "AWSPENDING"]


def test_postgres_psql_connects(postgres):
    res = postgres.psql("select current_user, inet_server_addr()")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "postgres|127.0.0.1"
    bad = postgres.psql("select 1", password="wrong-password")
    assert bad.returncode != 0 and "password authentication failed" in bad.stderr


def test_provider_key_lifecycle(provider):
    key_id, secret = provider.create_key("selftest")
    assert provider.test_key(secret) == 200
    assert provider.call("DELETE", "/v1/api-keys/" + key_id)[0] == 204
    assert provider.test_key(secret) == 401
    assert provider.call("DELETE", "/v1/api-keys/" + key_id)[0] == 404
    assert provider.test_key("sk_live_unknown") == 401
    assert provider.call("GET", "/v1/api-keys", token="not-admin")[0] == 401
    status, body = provider.call("GET", "/v1/audit-log?api_key_id=%s&since=2000-01-01T00:00:00Z" % key_id)
    assert status == 200 and [e["status"] for e in body["entries"]] == [200, 401]
    log = provider.requests()
    assert any(r["path"] == "/v1/test" and r["status"] == 401 for r in log)
    assert secret not in str(log)


def test_provider_injected_faults(provider):
    provider.inject([429, 503])
    assert provider.call("POST", "/v1/api-keys", body={"name": "x"})[0] == 429
    assert provider.call("POST", "/v1/api-keys", body={"name": "x"})[0] == 503
    assert provider.call("POST", "/v1/api-keys", body={"name": "x"})[0] == 201
