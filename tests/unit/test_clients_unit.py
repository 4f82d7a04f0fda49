"""_clients/: the one Vault client and the one AWS session factory, with the option names of
community.hashi_vault and amazon.aws."""
import types

import pytest

from ansible_collections.credops.rotation.plugins.module_utils._clients import aws, vault
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
