"""_clients/: the one Vault client and the one AWS session factory, with the option names of
community.hashi_vault and amazon.aws."""
import types

import pytest

from ansible_collections.credops.rotation.plugins.module_utils._clients import aws, http_api, vault
from ansible_collections.credops.rotation.plugins.module_utils._clients._common import env_default, verify_setting


@pytest.mark.parametrize("validate_certs, ca_cert, expected", [
    (True, None, True), (None, None, True), (False, None, False),
    (True, "/ca.pem", "/ca.pem"), (None, "/ca.pem", "/ca.pem"), (False, "/ca.pem", False),
])
def test_verify_setting(validate_certs, ca_cert, expected):
    assert verify_setting(validate_certs, ca_cert) == expected


def test_env_default(monkeypatch):
    monkeypatch.delenv("CREDOPS_T_A", raising=False)
    monkeypatch.setenv("CREDOPS_T_B", "from-b")
    assert env_default("given", "CREDOPS_T_A", "CREDOPS_T_B") == "given"
    assert env_default(None, "CREDOPS_T_A", "CREDOPS_T_B") == "from-b"
    assert env_default("", "CREDOPS_T_A") is None


@pytest.mark.parametrize("options, verify, timeout", [
    ({"url": "http://127.0.0.1:1", "token": "t"}, True, 30),
    ({"url": "http://127.0.0.1:1", "token": "t", "ca_cert": "/ca.pem", "timeout": 5}, "/ca.pem", 5),
    ({"url": "http://127.0.0.1:1", "token": "t", "validate_certs": False, "ca_cert": "/ca.pem"}, False, 30),
])
def test_vault_client_options(options, verify, timeout):
    client = vault.vault_client(dict(options, namespace="team-a"))
    assert client.url == "http://127.0.0.1:1"
    assert client.adapter._kwargs["verify"] == verify
    assert client.adapter._kwargs["timeout"] == timeout
    assert client.adapter.namespace == "team-a"


class _AppRole(object):
    def __init__(self, client):
        self.client, self.calls = client, []

    def login(self, **kwargs):
        self.calls.append(kwargs)
        self.client.token = "got-" + kwargs["role_id"]


def _fake_client():
    client = types.SimpleNamespace(token=None)
    client.auth = types.SimpleNamespace(approle=_AppRole(client))
    return client


@pytest.mark.parametrize("options, calls, token", [
    ({"auth_method": "token"}, [], None),
    ({}, [], None),
    ({"auth_method": "approle", "role_id": "r", "secret_id": "s"}, [{"role_id": "r", "secret_id": "s"}], "got-r"),
    ({"auth_method": "approle", "role_id": "r", "secret_id": "s", "mount_point": "ar"},
     [{"role_id": "r", "secret_id": "s", "mount_point": "ar"}], "got-r"),
])
def test_vault_login(options, calls, token):
    client = _fake_client()
    assert vault.vault_login(client, options) == token
    assert client.auth.approle.calls == calls


class _Session(object):
    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.region_name = kwargs.get("region_name") or "eu-west-1"

    def client(self, service, **kwargs):
        return dict(kwargs, service=service)


@pytest.mark.parametrize("options, expected", [
    ({}, {}),
    ({"profile": "ops", "region": "us-east-2"}, {"profile_name": "ops", "region_name": "us-east-2"}),
    ({"access_key": "AKIA1", "secret_key": "s3cr3t"},
     {"aws_access_key_id": "AKIA1", "aws_secret_access_key": "s3cr3t", "aws_session_token": None}),
    ({"access_key": "AKIA1", "secret_key": "s3cr3t", "session_token": "st"},
     {"aws_access_key_id": "AKIA1", "aws_secret_access_key": "s3cr3t", "aws_session_token": "st"}),
])
def test_aws_session_options(monkeypatch, options, expected):
    monkeypatch.setattr(aws, "boto3", types.SimpleNamespace(session=types.SimpleNamespace(Session=_Session)))
    assert aws.aws_session(options).kwargs == expected


@pytest.mark.parametrize("options, region, endpoint, verify, timeout", [
    ({}, "eu-west-1", None, True, 10),
    ({"region": "us-east-2", "endpoint_url": "http://127.0.0.1:5000", "timeout": 3},
     "us-east-2", "http://127.0.0.1:5000", True, 3),
    ({"aws_ca_bundle": "/ca.pem"}, "eu-west-1", None, "/ca.pem", 10),
    ({"validate_certs": False, "aws_ca_bundle": "/ca.pem"}, "eu-west-1", None, False, 10),
])
def test_aws_client_options(options, region, endpoint, verify, timeout):
    client = aws.aws_client(_Session(), "iam", options, max_attempts=4)
    assert (client["service"], client["region_name"], client["endpoint_url"], client["verify"]) == (
        "iam", region, endpoint, verify)
    config = client["config"]
    assert (config.connect_timeout, config.read_timeout) == (timeout, timeout)
    assert config.retries == {"mode": "standard", "max_attempts": 4}


# --- http_api: the described-HTTP-API client of the rest issuer and the webhook sender ---------

@pytest.mark.parametrize("status, method, kind", [
    (401, "GET", "auth"), (403, "POST", "auth"), (404, "DELETE", "not_found"),
    (500, "POST", "maybe_acted"), (502, "PATCH", "maybe_acted"), (503, "POST", "busy"), (429, "POST", "busy"),
    (500, "GET", "busy"), (504, "DELETE", "busy"), (400, "POST", "rejected"), (409, "PUT", "rejected"),
    (302, "GET", "unexpected"), (200, "GET", "unexpected"),
])
def test_status_kind(status, method, kind):
    assert http_api.status_kind(status, method) == kind


@pytest.mark.parametrize("status, expect, ok", [
    (200, None, True), (204, None, True), (302, None, False), (404, None, False),
    (404, [404], True), (200, [201], False),
])
def test_status_ok(status, expect, ok):
    assert http_api.status_ok(status, expect) is ok


@pytest.mark.parametrize("kind, auth, headers, secrets", [
    ("bearer", {"token": "tok"}, {"Authorization": "Bearer tok"}, ["tok"]),
    ("basic", {"username": "u", "password": "p"}, {"Authorization": "Basic dTpw"}, ["p", "dTpw"]),
    ("header", {"name": "X-Admin-Key", "value": "v"}, {"X-Admin-Key": "v"}, ["v"]),
    ("none", {}, {}, []),
])
def test_auth_headers(kind, auth, headers, secrets):
    assert http_api.auth_headers(kind, auth) == (headers, secrets)


@pytest.mark.parametrize("template, path", [("/v1/keys/{id}", "/v1/keys/a%2Fb"), ("v1/keys/{id}", "/v1/keys/a%2Fb")])
def test_http_api_path(template, path):
    assert http_api.HttpApi.path(template, {"id": "a/b"}) == path


@pytest.mark.parametrize("admin, extra, sent", [
    (True, None, {"X-Trace": "1", "Authorization": "Bearer tok"}),
    (False, {"Authorization": "Bearer key"}, {"X-Trace": "1", "Authorization": "Bearer key"}),
    (True, {"X-Trace": "2"}, {"X-Trace": "2", "Authorization": "Bearer tok"}),
])
def test_http_api_call_headers(monkeypatch, admin, extra, sent):
    seen = []

    def fake_request(method, url, **kwargs):
        seen.append((method, url, kwargs))
        return "resp"

    monkeypatch.setattr(http_api, "request", fake_request)
    api = http_api.HttpApi("http://127.0.0.1:9/api/", auth={"Authorization": "Bearer tok"}, headers={"X-Trace": "1"},
                           timeout=3, retries=0, validate_certs=False, ca_path="/ca.pem")
    assert api.call("POST", "/v1/keys", headers=extra, admin=admin, body={"a": 1}) == "resp"
    method, url, kwargs = seen[0]
    assert (method, url) == ("POST", "http://127.0.0.1:9/api/v1/keys")
    assert kwargs["headers"] == sent
    assert (kwargs["json_body"], kwargs["timeout"], kwargs["retries"], kwargs["validate_certs"], kwargs["ca_path"]) == (
        {"a": 1}, 3, 0, False, "/ca.pem")
