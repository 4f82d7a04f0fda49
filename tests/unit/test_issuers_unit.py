"""Pure logic of the issuers and the issue/revoke modules: no service, no network.

HTTP is faked at ``_http.open_url`` (the one place requests leave the process), sleeps are
recorded instead of slept. The aws_iam two-key table and the postgres password, revoke-refusal
and login tables run against the lab's moto and PostgreSQL: tests/integration/test_issuer_tables.py.
"""
import io
import json
import math
import socket
import string
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import yaml
from ansible.module_utils.six.moves import http_client
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

from ansible_collections.credops.rotation.plugins.module_utils import _http
from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._issuers import registry
from ansible_collections.credops.rotation.plugins.module_utils._clients.http_api import render_path
from ansible_collections.credops.rotation.plugins.module_utils._issuers._base import Issuer, fingerprint
from ansible_collections.credops.rotation.plugins.module_utils._issuers.generated import (
    ALPHABETS, GeneratedIssuer)
from ansible_collections.credops.rotation.plugins.module_utils._issuers.postgres import (
    PASSWORD_ALPHABET, PostgresIssuer)
from ansible_collections.credops.rotation.plugins.module_utils._issuers.rest import RestIssuer, describe_shape
from ansible_collections.credops.rotation.plugins.module_utils._time import format_time as utc_iso
from ansible_collections.credops.rotation.plugins.module_utils._time import parse_time as parse_iso
from ansible_collections.credops.rotation.plugins.modules import issue_key, revoke_key

SECRET = "sk_live_UNIT-TEST-SECRET-0123456789"
ADMIN = "unit-admin-token-abcdef"


# --- a fake HTTP server at the open_url seam ------------------------------------------------
class FakeResponse:
    def __init__(self, status, body, headers):
        self.status, self.body, self.headers = status, body, headers

    def getcode(self):
        return self.status

    def read(self):
        return self.body


class FakeHTTP:
    """Answers queued (status, json_body, headers) in order; records every call."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, url, method=None, data=None, headers=None, **kwargs):
        self.calls.append(dict(url=url, method=method, data=data, headers=dict(headers or {})))
        status, body, headers = self.answers.pop(0)
        raw = json.dumps(body).encode() if body is not None else b""
        if status >= 400:
            raise HTTPError(url, status, "fake", headers or {}, io.BytesIO(raw))
        return FakeResponse(status, raw, headers or {})


@pytest.fixture
def http(monkeypatch):
    def install(*answers):
        fake = FakeHTTP(answers)
        monkeypatch.setattr(_http, "open_url", fake)
        return fake
    return install


def rest_config(**over):
    config = dict(
        base_url="http://127.0.0.1:9/api",
        auth=dict(type="bearer", token=ADMIN),
        create=dict(method="POST", path="/v1/api-keys", body={"name": "x"}, expect_status=[200, 201],
                    secret_path="api_key", id_path="id"),
        revoke=dict(method="DELETE", path="/v1/api-keys/{id}"),
        test=dict(method="GET", path="/v1/test", header="Authorization", format="Bearer {secret}"),
        usage=dict(method="GET", path="/v1/audit-log?api_key_id={id}&since={since}", events_path="entries",
                   time_path="timestamp", source_path="source_ip"),
        retries=3,
    )
    config.update(over)
    return config


def rest(sleeps=None, **over):
    issuer = RestIssuer(rest_config(**over), "payment-gateway-api")
    issuer.sleep = (sleeps.append if sleeps is not None else (lambda s: None))
    return issuer


# --- rest: path templating -------------------------------------------------------------------
@pytest.mark.parametrize("template, values, expected", [
    ("/v1/api-keys/{id}", {"id": "key_1"}, "/v1/api-keys/key_1"),
    ("/v1/api-keys/{id}", {"id": "a/../b?c=d&e"}, "/v1/api-keys/a%2F..%2Fb%3Fc%3Dd%26e"),
    ("/v1/api-keys/{id}", {"id": "with space#frag"}, "/v1/api-keys/with%20space%23frag"),
    ("/v1/audit-log?api_key_id={id}&since={since}", {"id": "k 1", "since": "2024-08-15T10:30:00Z"},
     "/v1/audit-log?api_key_id=k%201&since=2024-08-15T10%3A30%3A00Z"),
    ("/v1/keys/{id}/{id}", {"id": 42}, "/v1/keys/42/42"),
    ("/v1/static", {}, "/v1/static"),
])
def test_render_path_quotes_every_value(template, values, expected):
    assert render_path(template, values) == expected


@pytest.mark.parametrize("values", [{}, {"id": None}])
def test_render_path_missing_value(values):
    with pytest.raises(KeyError):
        render_path("/v1/api-keys/{id}", values)


# --- rest: preflight --------------------------------------------------------------------------
@pytest.mark.parametrize("over, field", [
    (dict(base_url=None), "issuer.base_url"),
    (dict(base_url="ftp://example.org"), "issuer.base_url"),
    (dict(auth=dict(type="bearer")), "issuer.auth.token"),
    (dict(auth=dict(type="basic", username="u")), "issuer.auth.password"),
    (dict(auth=dict(type="header", value="v")), "issuer.auth.name"),
    (dict(create=None), "issuer.create"),
    (dict(create=dict(path="/v1/api-keys", id_path="id")), "issuer.create.secret_path"),
    (dict(create=dict(path="/v1/api-keys", secret_path="api_key[")), "issuer.create.secret_path"),
    (dict(create=dict(path="/v1/api-keys", secret_path="api_key", id_path="id..x")), "issuer.create.id_path"),
    (dict(revoke=dict(path="/v1/api-keys/{key}")), "issuer.revoke.path"),
    (dict(create=dict(path="/v1/{id}", secret_path="a")), "issuer.create.path"),
    (dict(usage=dict(path="/u/{id}", time_path="t")), "issuer.usage.events_path"),
    (dict(usage=dict(path="/u/{id}", events_path="e", time_path="t[")), "issuer.usage.time_path"),
    (dict(get=dict(path="/k/{id}", active_path="status ==")), "issuer.get.active_path"),
])
def test_rest_preflight_names_credential_and_field(over, field):
    with pytest.raises(RotationError) as err:
        rest(**over)
    text = str(err.value)
    assert "credential 'payment-gateway-api'" in text
    assert field in text
    assert err.value.step == "preflight"
    assert ADMIN not in text


@pytest.mark.parametrize("auth, header, value", [
    (dict(type="bearer", token="t0k"), "Authorization", "Bearer t0k"),
    (dict(token="t0k"), "Authorization", "Bearer t0k"),
    (dict(type="basic", username="u", password="p"), "Authorization", "Basic dTpw"),
    (dict(type="header", name="X-Admin-Key", value="v4l"), "X-Admin-Key", "v4l"),
])
def test_rest_auth_headers(http, auth, header, value):
    fake = http((201, {"id": "k1", "api_key": SECRET}, {}))
    rest(auth=auth).create()
    assert fake.calls[0]["headers"][header] == value


# --- rest: create ---------------------------------------------------------------------------
def test_rest_create_extracts_secret_and_id(http):
    fake = http((201, {"id": "key_1", "api_key": SECRET, "name": "x"}, {}))
    out = rest().create()
    assert out == dict(id="key_1", secret=SECRET, info=dict(http_status=201))
    call = fake.calls[0]
    assert call["method"] == "POST" and call["url"] == "http://127.0.0.1:9/api/v1/api-keys"
    assert json.loads(call["data"]) == {"name": "x"}
    assert call["headers"]["Authorization"] == "Bearer " + ADMIN


def test_rest_create_form_body(http):
    fake = http((200, {"data": {"key": {"value": SECRET, "id": 7}}}, {}))
    out = rest(create=dict(path="/keys", form={"name": "x"}, secret_path="data.key.value",
                           id_path="data.key.id")).create()
    assert out["secret"] == SECRET and out["id"] == "7"
    assert fake.calls[0]["data"] == "name=x"
    assert fake.calls[0]["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize("over, body, field", [
    ({}, {"id": "key_1", "key": SECRET}, "create.secret_path"),
    ({}, {"api_key": SECRET}, "create.id_path"),
    ({}, [SECRET], "create.secret_path"),
    ({}, None, "create.secret_path"),
])
def test_rest_create_jmespath_finds_nothing(http, over, body, field):
    http((201, body, {}))
    with pytest.raises(RotationError) as err:
        rest(**over).create()
    text = str(err.value)
    assert "credential 'payment-gateway-api'" in text and "step issue" in text
    assert "issuer." + field in text and "found nothing" in text
    assert SECRET not in text and ADMIN not in text
    assert "revoke it" in text  # the fix says a key was probably created
    if isinstance(body, dict):
        assert "keys: " in text  # the shape is described by key names only


def test_rest_create_secret_not_a_string(http):
    http((201, {"id": "k", "api_key": {"value": SECRET}}, {}))
    with pytest.raises(RotationError) as err:
        rest().create()
    assert "not a non-empty string" in str(err.value) and SECRET not in str(err.value)


def test_describe_shape_hides_values():
    text = describe_shape({"id": "k", "api_key": SECRET, SECRET: 1})
    assert "api_key" in text and "id" in text and SECRET not in text and "1 more" in text


@pytest.mark.parametrize("status, fix", [
    (401, "issuer.auth"), (403, "issuer.auth"), (404, "issuer.create.path"),
    (400, "rejected the request"), (302, "expect_status"),
])
def test_rest_create_status_errors(http, status, fix):
    http((status, {"error": "nope", "echo": SECRET}, {}))
    with pytest.raises(RotationError) as err:
        rest().create()
    text = str(err.value)
    assert "HTTP %d" % status in text and fix in text
    assert SECRET not in text and "nope" not in text


def test_rest_retry_after_is_honoured(http):
    sleeps = []
    fake = http((429, {"error": "slow down"}, {"Retry-After": "7"}),
                (503, None, {}),
                (201, {"id": "key_1", "api_key": SECRET}, {}))
    assert rest(sleeps=sleeps).create()["id"] == "key_1"
    assert len(fake.calls) == 3
    assert sleeps[0] == 7.0 and 0.5 <= sleeps[1] <= 1.0  # Retry-After, then backoff 0.5 * 2**1 with jitter


def test_rest_retry_after_http_date():
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    wait = _http._retry_after({"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")}, 1)
    assert 25 <= wait <= 31
    assert _http._retry_after({"Retry-After": "soon"}, 2.5) == 2.5
    assert _http._retry_after({}, 1.5) == 1.5


def test_rest_gives_up_after_retries(http):
    sleeps = []
    http(*[(503, None, {})] * 4)
    with pytest.raises(RotationError) as err:
        rest(sleeps=sleeps).create()
    assert len(sleeps) == 3
    assert "HTTP 503" in str(err.value) and "after 3 retries" in str(err.value)


def test_rest_unreachable(monkeypatch):
    from ansible.module_utils.six.moves.urllib.error import URLError

    def refuse(*args, **kwargs):
        raise URLError(ConnectionRefusedError(111, "Connection refused"))  # as urllib reports it
    monkeypatch.setattr(_http, "open_url", refuse)
    issuer = rest(retries=1)
    with pytest.raises(RotationError) as err:
        issuer.create()
    assert "could not reach" in str(err.value) and "issuer.base_url" in str(err.value)
    assert issuer.warnings == ["POST /api/v1/api-keys: ConnectionRefusedError; retry 1 of 1 in %s s" % issuer.warnings[0].split()[-2]]


def _fails_after_sending(kind):
    """What open_url raises when the request went out and no answer came back."""
    def fail(*args, **kwargs):
        fail.calls += 1
        raise {"timeout": URLError(socket.timeout("timed out")), "reset": ConnectionResetError(104, "reset"),
               "closed": http_client.RemoteDisconnected("Remote end closed connection without response")}[kind]
    fail.calls = 0
    return fail


@pytest.mark.parametrize("kind", ["timeout", "reset", "closed"])
def test_rest_create_is_not_resent_when_it_may_have_arrived(monkeypatch, kind):
    fail = _fails_after_sending(kind)
    monkeypatch.setattr(_http, "open_url", fail)
    issuer = rest()
    with pytest.raises(RotationError) as err:
        issuer.create()
    assert fail.calls == 1  # a second POST could make a second key
    assert "was not sent again" in str(err.value) and "revoke it" in str(err.value)
    assert issuer.warnings == []


@pytest.mark.parametrize("status", [500, 502, 504])
def test_rest_create_is_not_resent_after_a_server_error(http, status):
    fake = http((status, None, {}), (201, {"id": "key_2", "api_key": SECRET}, {}))
    with pytest.raises(RotationError) as err:
        rest().create()
    assert len(fake.calls) == 1
    assert "HTTP %d" % status in str(err.value) and "not sent again" in str(err.value)


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_rest_idempotent_calls_are_retried_with_jitter_and_a_warning(http, status):
    sleeps = []
    fake = http((status, None, {}), (status, None, {}), (204, None, {}))
    issuer = rest(sleeps=sleeps)
    assert issuer.revoke("key_1") is True
    assert len(fake.calls) == 3 and [c["method"] for c in fake.calls] == ["DELETE"] * 3
    assert 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0  # backoff 0.5 * 2**n, the upper half random
    assert [w.split(";")[0] for w in issuer.warnings] == ["DELETE /api/v1/api-keys/key_1: HTTP %d" % status] * 2


def test_rest_timeouts_of_idempotent_calls_are_retried(monkeypatch):
    fail = _fails_after_sending("timeout")
    monkeypatch.setattr(_http, "open_url", fail)
    issuer = rest(retries=2)
    with pytest.raises(RotationError) as err:
        issuer.revoke("key_1")
    assert fail.calls == 3 and "could not reach" in str(err.value) and len(issuer.warnings) == 2


# --- rest: revoke / exists / test / usage -------------------------------------------------------
@pytest.mark.parametrize("status, changed", [(204, True), (200, True), (404, False), (410, False)])
def test_rest_revoke(http, status, changed):
    fake = http((status, None, {}))
    assert rest().revoke("key/1") is changed
    assert fake.calls[0]["method"] == "DELETE"
    assert fake.calls[0]["url"].endswith("/v1/api-keys/key%2F1")


def test_rest_revoke_error_and_missing_id(http):
    http((400, None, {}))
    with pytest.raises(RotationError) as err:
        rest().revoke("k1")
    assert "step revoke" in str(err.value) and "HTTP 400" in str(err.value)
    with pytest.raises(RotationError):
        rest().revoke(None)


@pytest.mark.parametrize("answers, get, expected", [
    ([], None, None),
    ([(200, {"status": "active"}, {})], dict(path="/k/{id}", active_path="status == 'active'"), True),
    ([(200, {"status": "revoked"}, {})], dict(path="/k/{id}", active_path="status == 'active'"), False),
    ([(200, {"status": "revoked"}, {})], dict(path="/k/{id}"), True),
    ([(404, None, {})], dict(path="/k/{id}"), False),
])
def test_rest_exists(http, answers, get, expected):
    http(*answers)
    assert rest(get=get).exists("k1") is expected


@pytest.mark.parametrize("status, expected", [(200, True), (204, True), (401, False), (403, False)])
def test_rest_test_key(http, status, expected):
    fake = http((status, None, {}))
    assert rest().test(SECRET) is expected
    assert fake.calls[0]["headers"]["Authorization"] == "Bearer " + SECRET
    assert "Bearer " + ADMIN not in fake.calls[0]["headers"].values()  # the key alone, no admin auth


def test_rest_test_key_unexpected_status(http):
    http((400, None, {}))
    with pytest.raises(RotationError) as err:
        rest(retries=0).test(SECRET)
    assert "HTTP 400" in str(err.value) and SECRET not in str(err.value)
    assert rest(test=None).test(SECRET) is None


def test_rest_usage(http):
    fake = http((200, {"entries": [{"timestamp": "2024-08-15T10:31:00Z", "source_ip": "10.0.0.7"},
                                   {"timestamp": "2024-08-15T10:32:00Z"}]}, {}))
    uses = rest().usage("key_1", datetime(2024, 8, 15, 10, 30, tzinfo=timezone.utc))
    assert uses == [dict(time="2024-08-15T10:31:00Z", source="10.0.0.7"),
                    dict(time="2024-08-15T10:32:00Z", source=None)]
    assert fake.calls[0]["url"].endswith("/v1/audit-log?api_key_id=key_1&since=2024-08-15T10%3A30%3A00Z")


@pytest.mark.parametrize("body, expected", [
    ({"entries": {"a": 1}}, "not a list"),
    ({"entries": [{"when": "x"}]}, "issuer.usage.time_path"),
])
def test_rest_usage_errors(http, body, expected):
    http((200, body, {}))
    with pytest.raises(RotationError) as err:
        rest().usage("k", "2024-01-01T00:00:00Z")
    assert expected in str(err.value)


def test_rest_usage_absent(http):
    assert rest(usage=None).usage("k", "2024-01-01T00:00:00Z") is None
    http((200, {}, {}))
    assert rest().usage("k", "2024-01-01T00:00:00Z") == []


# --- generated ---------------------------------------------------------------------------------
@pytest.mark.parametrize("config, chars, length", [
    ({}, ALPHABETS["urlsafe"], 48),
    ({"alphabet": "hex", "length": 64}, "0123456789abcdef", 64),
    ({"alphabet": "alnum", "length": 40}, string.ascii_letters + string.digits, 40),
    ({"alphabet": "ABCDEFGHJKLMNPQRSTUVWXYZ23456789", "length": 30}, "ABCDEFGHJKLMNPQRSTUVWXYZ23456789", 30),
    ({"alphabet": "aabb", "length": 200}, "ab", 200),
])
def test_generated_alphabet_and_length(config, chars, length):
    issuer = GeneratedIssuer(config, "webhook")
    values = [issuer.create() for _index in range(50)]
    for out in values:
        assert len(out["secret"]) == length
        assert set(out["secret"]) <= set(chars)
        assert out["id"] == fingerprint(out["secret"]) and len(out["id"]) == 12
        assert out["info"]["entropy_bits"] == int(length * math.log2(len(set(chars))))
    assert len({v["secret"] for v in values}) == 50
    assert issuer.has_ids is False and issuer.can_revoke is False
    assert issuer.revoke(values[0]["id"]) is False


def test_generated_prefix_and_uniformity():
    issuer = GeneratedIssuer({"alphabet": "hex", "length": 4000, "prefix": "whsec_"}, "webhook")
    value = issuer.create()["secret"]
    assert value.startswith("whsec_") and len(value) == 4006
    counts = Counter(value[6:])
    assert set(counts) == set("0123456789abcdef")
    assert all(150 < n < 350 for n in counts.values())  # 250 expected each


@pytest.mark.parametrize("config, text", [
    ({"length": 10}, "bits of entropy"),
    ({"alphabet": "hex", "length": 31}, "raise issuer.length to at least 32"),
    ({"alphabet": "aaaa"}, "at least 2 distinct"),
])
def test_generated_refuses_weak(config, text):
    with pytest.raises(RotationError) as err:
        GeneratedIssuer(config, "webhook")
    assert text in str(err.value) and "credential 'webhook'" in str(err.value)


# --- registry and the issuer argspec ------------------------------------------------------------
def test_registry_unknown_kind():
    with pytest.raises(RotationError) as err:
        registry.get_issuer({"kind": "ldap"}, "svc")
    text = str(err.value)
    assert "credential 'svc'" in text and "'ldap'" in text
    for kind in ("rest", "aws_iam", "postgres", "vault_pki", "generated"):
        assert kind in text


@pytest.mark.parametrize("config, field", [
    ({"kind": "aws_iam"}, "issuer.user_name"),
    ({"kind": "postgres"}, "issuer.role"),
    ({"kind": "postgres", "role": "app", "length": 8}, "issuer.length"),
    ({"kind": "vault_pki", "url": "http://127.0.0.1:9", "token": "t", "common_name": "a.lab.test"}, "issuer.role"),
    ({"kind": "vault_pki", "url": "http://127.0.0.1:9", "token": "t", "role": "lab"}, "issuer.common_name"),
    ({"kind": "vault_pki", "url": "http://127.0.0.1:9", "role": "lab", "common_name": "a", "role_id": "r"},
     "issuer.secret_id"),
    ({"kind": "rest"}, "issuer.base_url"),
])
def test_preflight_per_kind(monkeypatch, config, field):
    for name in ("VAULT_TOKEN", "BAO_TOKEN", "VAULT_ADDR", "BAO_ADDR"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RotationError) as err:
        registry.get_issuer(config, "svc")
    assert field in str(err.value) and "credential 'svc'" in str(err.value) and err.value.step == "preflight"


def test_vault_needs_a_token(monkeypatch):
    for name in ("VAULT_TOKEN", "BAO_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RotationError) as err:
        registry.get_issuer({"kind": "vault_pki", "url": "http://127.0.0.1:9", "role": "lab", "common_name": "a"}, "c")
    assert "VAULT_TOKEN" in str(err.value)
    monkeypatch.setenv("VAULT_TOKEN", "from-env")
    assert registry.get_issuer({"kind": "vault_pki", "url": "http://127.0.0.1:9", "role": "lab",
                                "common_name": "a"}, "c").token == "from-env"


@pytest.mark.parametrize("kind, cls", sorted(registry.ISSUERS.items()))
def test_registry_classes(kind, cls):
    assert cls.kind == kind


@pytest.mark.parametrize("path", [
    ("token",), ("admin_password",), ("secret_id",), ("secret_key",), ("session_token",),
    ("auth", "token"), ("auth", "password"), ("auth", "value"),
])
def test_secret_options_are_no_log(path):
    spec = registry.ISSUER_ARGSPEC
    for name in path:
        spec = spec["options"][name]
    assert spec.get("no_log") is True


def test_issuer_config_prunes_and_merges_http():
    config = registry.issuer_config(
        {"kind": "rest", "timeout": None, "validate_certs": False, "auth": {"type": "bearer", "token": "t",
                                                                            "password": None},
         "create": {"path": "/x", "body": {"keep": None}, "form": None}},
        {"timeout": 10, "validate_certs": True, "retries": 3, "ca_path": None})
    assert config["timeout"] == 10 and config["validate_certs"] is False and config["retries"] == 3
    assert "ca_path" not in config and "password" not in config["auth"] and "form" not in config["create"]
    assert config["create"]["body"] == {"keep": None}


def _doc_options(options):
    out = {}
    for name, doc in options.items():
        item = dict(type=doc.get("type", "str"), choices=sorted(doc.get("choices") or []) or None,
                    elements=doc.get("elements"))
        if "suboptions" in doc:
            item["options"] = _doc_options(doc["suboptions"])
        out[name] = item
    return out


def _spec_options(options):
    out = {}
    for name, spec in options.items():
        item = dict(type=spec.get("type", "str"), choices=sorted(spec.get("choices") or []) or None,
                    elements=spec.get("elements"))
        if "options" in spec:
            item["options"] = _spec_options(spec["options"])
        out[name] = item
    return out


def test_doc_fragment_mirrors_the_argspec():
    from ansible_collections.credops.rotation.plugins.doc_fragments.issuer import ModuleDocFragment
    doc = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]["issuer"]
    assert doc["type"] == "dict" and doc["required"] is True
    assert _doc_options(doc["suboptions"]) == _spec_options(registry.ISSUER_ARGSPEC["options"])


@pytest.mark.parametrize("module", [issue_key, revoke_key])
def test_module_docs_mirror_the_argspec(module):
    """DOCUMENTATION (with its fragments) and argument_spec() agree: names, types, defaults,
    choices, elements, required (what validate-modules checks; it cannot run offline here)."""
    from ansible_collections.credops.rotation.plugins.doc_fragments import http, issuer
    doc = yaml.safe_load(module.DOCUMENTATION)
    assert doc["extends_documentation_fragment"][:2] == ["credops.rotation.issuer", "credops.rotation.http"]
    options = dict(doc["options"])
    options.update(yaml.safe_load(issuer.ModuleDocFragment.DOCUMENTATION)["options"])
    options.update(yaml.safe_load(http.ModuleDocFragment.DOCUMENTATION)["options"])
    if "credops.rotation.store.optional" in doc["extends_documentation_fragment"]:
        from ansible_collections.credops.rotation.plugins.doc_fragments import store
        options.update(yaml.safe_load(store.ModuleDocFragment.OPTIONAL)["options"])
    from ansible_collections.credops.rotation.plugins.doc_fragments import audit
    assert "credops.rotation.audit" in doc["extends_documentation_fragment"]
    options.update(yaml.safe_load(audit.ModuleDocFragment.DOCUMENTATION)["options"])
    spec = module.argument_spec()
    assert _doc_options(options["audit"]["suboptions"]) == _spec_options(spec["audit"]["options"])
    assert sorted(options) == sorted(spec)
    for name, item in spec.items():
        assert options[name].get("type", "str") == item.get("type", "str"), name
        assert options[name].get("default") == item.get("default"), name
        assert bool(options[name].get("required")) == bool(item.get("required")), name
    for name in ("secret",):
        if name in spec:
            assert spec[name]["no_log"] is True
    yaml.safe_load(module.EXAMPLES)
    returns = yaml.safe_load(module.RETURN)
    assert all("description" in v and "returned" in v and "type" in v for v in returns.values())


# --- the modules' logic ---------------------------------------------------------------------------
class FakeIssuer(Issuer):  # the interface, with its declarations (stored facts, ...)
    kind = "fake"
    has_ids = True
    can_revoke = True

    def __init__(self, created=None, uses=None, tests=(), exists=None):
        self.created, self.uses, self.tests, self._exists = created, uses, list(tests), exists
        self.revoked = []

    def create(self):
        return self.created

    def usage(self, key_id, since):
        return self.uses

    def test(self, secret, key_id=None):
        return self.tests.pop(0)

    def exists(self, key_id):
        return self._exists

    def revoke(self, key_id, secret=None, force=False):
        self.revoked.append(key_id)
        return True


def test_issue_check_mode_calls_nothing():
    changed, result = issue_key.issue(FakeIssuer(created=None), "c", check_mode=True)
    assert changed and result["secret"] is None and result["key_id"] is None


def test_issue_returns_fingerprint_and_keeps_secret_out_of_msg():
    changed, result = issue_key.issue(FakeIssuer(created=dict(id="k1", secret=SECRET, info={"a": 1})), "c", False)
    assert result["secret"] == SECRET and result["fingerprint"] == fingerprint(SECRET)
    assert SECRET not in result["msg"]


@pytest.mark.parametrize("created", [
    dict(id=SECRET, secret=SECRET, info={}),
    dict(id="k1", secret=SECRET, info={"echo": "x" + SECRET}),
    dict(id="k1", secret="", info={}),
])
def test_issue_refuses_to_expose_secret(created):
    with pytest.raises(RotationError) as err:
        issue_key.issue(FakeIssuer(created=created), "c", False)
    assert SECRET not in str(err.value)


@pytest.mark.parametrize("value, problem", [("a\nb", "a newline"), ("a\rb", "a carriage return"), ("a\x00b", "a NUL")])
def test_issue_refuses_a_value_no_environment_file_can_carry_and_revokes_it(value, problem):
    secret = SECRET + value
    issuer = FakeIssuer(created=dict(id="k1", secret=secret, info={}))
    with pytest.raises(RotationError) as err:
        issue_key.issue(issuer, "c", False, ["web-app", "worker"])
    assert issuer.revoked == ["k1"] and err.value.changed and err.value.step == "issue"
    assert ("contains %s" % problem) in str(err.value) and "env_file of web-app, worker" in str(err.value)
    assert "the new key k1 was revoked at the issuer" in str(err.value) and SECRET not in str(err.value)

    class NoRevoke(FakeIssuer):
        can_revoke = False
    issuer = NoRevoke(created=dict(id="k1", secret=secret, info={}))
    with pytest.raises(RotationError) as err:
        issue_key.issue(issuer, "c", False, ["web-app"])
    assert issuer.revoked == [] and not err.value.changed and "the new value was dropped" in str(err.value)

    class RevokeFails(FakeIssuer):
        def revoke(self, key_id, secret=None, force=False):
            raise RotationError("the issuer answered 503.")
    with pytest.raises(RotationError) as err:
        issue_key.issue(RevokeFails(created=dict(id="k1", secret=secret, info={})), "c", False, ["web-app"])
    assert "revoking the new key k1 at the issuer failed too (the issuer answered 503.): revoke it there" in str(err.value)
    # without environment-file consumers (a certificate, a Kubernetes Secret) the value is returned
    changed, result = issue_key.issue(FakeIssuer(created=dict(id="k1", secret=secret, info={})), "c", False, [])
    assert changed and result["secret"] == secret


T0 = "2024-08-15T10:30:00Z"


@pytest.mark.parametrize("uses, outcome", [
    (None, None),
    ([], []),
    ([dict(time="2024-08-15T10:29:59Z", source="old-host")], []),
    ([dict(time="2024-08-15T10:30:00.5Z", source="10.0.0.9"), dict(time="2024-08-15T10:31:00Z", source="10.0.0.9"),
      dict(time="2024-08-15T10:35:00+02:00", source="before, in another zone")], "10.0.0.9"),
    ([dict(time="not a time", source="mystery")], "mystery"),
])
def test_revoke_guard(uses, outcome):
    issuer = FakeIssuer(uses=uses)
    if isinstance(outcome, str):
        with pytest.raises(RotationError) as err:
            revoke_key.guard(issuer, "c", "k1", T0, 0)
        text = str(err.value)
        assert outcome in text and "Nothing was revoked" in text and "force_revoke" in text
        assert "another zone" not in text
    else:
        assert revoke_key.guard(issuer, "c", "k1", T0, 0) == outcome


def test_revoke_guard_watches_quiet_seconds():
    now = [0.0]
    sleeps = []

    def sleep(s):
        sleeps.append(s)
        now[0] += s
    assert revoke_key.guard(FakeIssuer(uses=[]), "c", "k1", T0, 12, sleep=sleep, clock=lambda: now[0]) == []
    assert sleeps == [5.0, 5.0, 2.0]


def test_revoke_guard_bad_time():
    with pytest.raises(RotationError) as err:
        revoke_key.guard(FakeIssuer(uses=[]), "c", "k1", "yesterday", 0)
    assert "unused_since" in str(err.value)


@pytest.mark.parametrize("tests, expected", [
    ([False], True), ([True, True, False], True), ([None], None), ([True] * 10, False),
])
def test_prove_polls_until_refused(tests, expected):
    now = [0.0]

    def sleep(s):
        now[0] += s
    assert revoke_key.prove(FakeIssuer(tests=tests), SECRET, "k1", 6, sleep=sleep, clock=lambda: now[0]) is expected


def _params(**over):
    params = dict(credential="c", key_id="k1", secret=None, force=False, unused_since=None, quiet_seconds=0,
                  prove_dead=False, prove_timeout=0)
    params.update(over)
    return params


@pytest.mark.parametrize("exists, tests, changed, revoked", [
    (True, [], True, False), (False, [], False, True), (None, [], True, False), (None, [False], False, True),
])
def test_revoke_check_mode_predicts(exists, tests, changed, revoked):
    issuer = FakeIssuer(exists=exists, tests=tests)
    out = revoke_key.revoke(issuer, _params(secret="s" if tests else None), True, lambda m: None)
    assert out[0] is changed and out[1]["revoked"] is revoked and issuer.revoked == []


def test_revoke_prove_dead_failure_reports_change():
    issuer = FakeIssuer(tests=[True])
    with pytest.raises(RotationError) as err:
        revoke_key.revoke(issuer, _params(secret=SECRET, prove_dead=True), False, lambda m: None)
    assert err.value.changed is True and "still accepted" in str(err.value) and SECRET not in str(err.value)


@pytest.mark.parametrize("issuer, needs", [
    (FakeIssuer(exists=True), True),
    (PostgresIssuer({"role": "app"}, "db"), False),
])
def test_revoke_key_id_required_where_needed(monkeypatch, issuer, needs):
    if needs:
        with pytest.raises(RotationError) as err:
            revoke_key.revoke(issuer, _params(key_id=None), False, lambda m: None)
        assert "key_id is required" in str(err.value)
    else:
        monkeypatch.setattr(issuer, "_logs_in", lambda secret, step: False)
        assert revoke_key.revoke(issuer, _params(key_id=None, secret="old"), False, lambda m: None)[0] is False


@pytest.mark.parametrize("old_logs_in, secret, changed, calls", [
    (True, "new", False, ["login:old", "login:new"]),
    (False, "new", True, ["login:old", "set:old", "login:new"]),
    (False, None, True, ["login:old", "set:old"]),
])
def test_revoke_restore_for_postgres_rollback(monkeypatch, old_logs_in, secret, changed, calls):
    issuer = PostgresIssuer({"role": "app"}, "db")
    seen = []

    class Conn:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

    def logs_in(value, step):
        seen.append("login:" + value)
        return old_logs_in if value == "old" else False
    monkeypatch.setattr(issuer, "_logs_in", logs_in)
    monkeypatch.setattr(issuer, "_admin", lambda step: Conn())
    monkeypatch.setattr(issuer, "_set_password", lambda conn, pw, step, valid_until=None: seen.append("set:" + pw))
    out = revoke_key.revoke(issuer, _params(key_id="app@x", secret=secret, restore_secret="old"), False, lambda m: 0)
    assert out[0] is changed and out[1]["restored"] is (not old_logs_in) and seen == calls


def test_restore_is_a_noop_elsewhere():
    assert GeneratedIssuer({}, "w").restore("x") is False
    assert rest().restore("x") is False


def test_revoke_generated_is_a_noop():
    out = revoke_key.revoke(GeneratedIssuer({}, "w"), _params(), False, lambda m: None)
    assert out[0] is False and out[1]["revoked"] is False


# --- shared helpers --------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    ("2024-08-15T10:30:00Z", datetime(2024, 8, 15, 10, 30, tzinfo=timezone.utc)),
    ("2024-08-15T10:30:00.123Z", datetime(2024, 8, 15, 10, 30, 0, 123000, tzinfo=timezone.utc)),
    ("2024-08-15T10:30:00.1234567Z", datetime(2024, 8, 15, 10, 30, 0, 123456, tzinfo=timezone.utc)),
    ("2024-08-15T12:30:00+02:00", datetime(2024, 8, 15, 10, 30, tzinfo=timezone.utc)),
    ("2024-08-15T10:30:00", datetime(2024, 8, 15, 10, 30, tzinfo=timezone.utc)),
])
def test_parse_iso(text, expected):
    assert parse_iso(text) == expected


def test_utc_iso_and_fingerprint():
    assert utc_iso(0) == "1970-01-01T00:00:00Z"
    assert utc_iso(datetime(2024, 8, 15, 12, 30, tzinfo=timezone(timedelta(hours=2)))) == "2024-08-15T10:30:00Z"
    assert fingerprint("abc") == "ba7816bf8f01" and fingerprint(None) is None


# --- postgres, alternating roles: against a fake catalog ---------------------------------------
class FakeCatalog:
    """The few catalog queries the alternating procedure runs, answered from a dict; every
    ALTER ROLE is recorded (rendered) instead of run."""

    def __init__(self, roles, sessions=None):
        # roles: name -> {"login": bool, "grants": set of grant strings}
        self.roles = roles
        self.sessions = dict(sessions or {})
        self.altered, self.terminated = [], []
        self.pgconn = self

    def encrypt_password(self, password, user, algorithm):
        return b"SCRAM-SHA-256$4096:c2FsdA==$c3RvcmVk:c2VydmVy"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, query, params=None):
        rows = []
        text = query if isinstance(query, str) else query.as_string(None)
        oids = dict((name, 1000 + i) for i, name in enumerate(sorted(self.roles)))
        if text.startswith("ALTER ROLE"):
            name = text.split('"')[1]
            self.altered.append(text.replace(text.split("'")[1], "<verifier>"))
            if " NOLOGIN" in text or " LOGIN" in text:
                self.roles[name]["login"] = " LOGIN" in text
        elif "rolname = ANY" in text:
            rows = [(n, self.roles[n]["login"]) for n in params[0] if n in self.roles]
        elif text.startswith("SELECT oid,"):
            name = params[0]
            rows = [(oids[name],) + tuple("attribute " + a in self.roles[name]["grants"] for a in (
                "rolsuper", "rolinherit", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls"))]
        elif "pg_auth_members" in text:
            name = [n for n, o in oids.items() if o == params["oid"]][0]
            rows = [(g,) for g in sorted(self.roles[name]["grants"]) if not g.startswith("attribute ")]
        elif text.startswith("SELECT rolcanlogin"):
            rows = [(self.roles[params[0]]["login"],)] if params[0] in self.roles else []
        elif "pg_terminate_backend" in text:
            ended = self.sessions.pop(params[0], [])
            self.terminated.extend(ended)
            rows = [(len(ended),)]
        elif "pg_stat_activity" in text:
            rows = [(addr, app, datetime(2024, 8, 15, 10, 0, tzinfo=timezone.utc))
                    for addr, app in self.sessions.get(params[0], [])]
        else:
            raise AssertionError("unexpected query: " + text)
        return type("Cursor", (), {"fetchone": lambda self: rows[0] if rows else None,
                                   "fetchall": lambda self: list(rows)})()


GROUP = {"member of orders_rw"}


def alternating(monkeypatch, a_login=True, b_login=False, a_grants=None, b_grants=None, sessions=None,
                logs_in=None, **config):
    a_grants = GROUP if a_grants is None else a_grants
    b_grants = GROUP if b_grants is None else b_grants
    issuer = PostgresIssuer(dict(dict(roles=["app_a", "app_b"], admin_password="adm1n-pw"), **config), "orders-db")
    catalog = FakeCatalog({"app_a": {"login": a_login, "grants": set(a_grants)},
                           "app_b": {"login": b_login, "grants": set(b_grants)}}, sessions)
    monkeypatch.setattr(issuer, "_admin", lambda step: catalog)
    logins = []

    def fake_logs_in(secret, step, role=None):
        logins.append(role)
        return (logs_in or {}).get(role, False)
    monkeypatch.setattr(issuer, "_logs_in", fake_logs_in)
    return issuer, catalog, logins


@pytest.mark.parametrize("a_login, b_login, idle, previous", [
    (True, False, "app_b", "app_a"),
    (False, True, "app_a", "app_b"),
    (False, False, "app_a", None),  # after an emergency revoked the role in use: the first listed
])
def test_postgres_alternating_create_gives_the_idle_role_a_new_password(monkeypatch, a_login, b_login, idle, previous):
    issuer, catalog, _logins = alternating(monkeypatch, a_login=a_login, b_login=b_login, valid_until_days=30)
    out = issuer.create()
    assert out["id"] == idle and len(out["secret"]) == 32 and set(out["secret"]) <= set(PASSWORD_ALPHABET)
    assert out["info"]["role"] == idle and out["info"]["previous_role"] == previous
    assert out["info"]["procedure"] == "alternating roles" and out["info"]["valid_until"]
    assert len(catalog.altered) == 1
    assert catalog.altered[0].startswith('ALTER ROLE "%s" WITH PASSWORD \'<verifier>\' LOGIN VALID UNTIL' % idle)
    assert out["secret"] not in catalog.altered[0]
    assert catalog.roles[idle]["login"] is True


@pytest.mark.parametrize("setup, text", [
    (dict(a_login=True, b_login=True), "can both log in, so which one is idle is unknown"),
    (dict(b_grants={"member of orders_ro"}), "do not have the same grants (only app_a has: member of orders_rw; "
                                             "only app_b has: member of orders_ro)"),
    (dict(b_grants=GROUP | {"attribute rolcreatedb"}), "only app_b has: attribute rolcreatedb"),
    (dict(a_grants=GROUP | {"owner of public.orders"}), "only app_a has: owner of public.orders"),
])
def test_postgres_alternating_create_refuses_before_changing_anything(monkeypatch, setup, text):
    issuer, catalog, _logins = alternating(monkeypatch, **setup)
    with pytest.raises(RotationError) as err:
        issuer.create()
    assert text in str(err.value) and "step issue" in str(err.value) and "Fix: " in str(err.value)
    assert catalog.altered == []


def test_postgres_alternating_missing_role(monkeypatch):
    issuer, catalog, _logins = alternating(monkeypatch)
    del catalog.roles["app_b"]
    with pytest.raises(RotationError) as err:
        issuer.create()
    text = str(err.value)
    assert "role(s) app_b of issuer.roles do not exist" in text and "CREATE ROLE app_b NOLOGIN" in text


def test_postgres_alternating_revoke_makes_the_old_role_idle(monkeypatch):
    sessions = {"app_a": [("10.0.0.9", "report-job")]}
    issuer, catalog, _logins = alternating(monkeypatch, a_login=True, b_login=True, sessions=sessions)
    assert issuer.revoke("app_a") is True
    assert catalog.altered == ['ALTER ROLE "app_a" WITH PASSWORD \'<verifier>\' NOLOGIN']
    assert catalog.roles["app_a"]["login"] is False and catalog.terminated == [("10.0.0.9", "report-job")]
    # again: already idle, no session left
    assert issuer.revoke("app_a") is False and len(catalog.altered) == 1


def test_postgres_alternating_revoke_refuses_the_only_login_role(monkeypatch):
    issuer, catalog, _logins = alternating(monkeypatch, a_login=True, b_login=False)
    with pytest.raises(RotationError) as err:
        issuer.revoke("app_a")
    assert "only one of issuer.roles that can log in" in str(err.value) and catalog.altered == []
    assert issuer.revoke("app_a", force=True) is True  # an emergency
    assert catalog.roles["app_a"]["login"] is False


@pytest.mark.parametrize("call", [
    lambda i: i.revoke("app_c"), lambda i: i.revoke("app_a@20240101T000000.000000Z"),
    lambda i: i.test("pw", key_id="app_c"), lambda i: i.usage("app_c", "2024-01-01T00:00:00Z"),
])
def test_postgres_alternating_key_id_is_one_of_the_roles(monkeypatch, call):
    issuer, _catalog, _logins = alternating(monkeypatch)
    with pytest.raises(RotationError) as err:
        call(issuer)
    assert "is not one of issuer.roles (app_a, app_b)" in str(err.value)


def test_postgres_alternating_test_exists_restore_usage(monkeypatch):
    sessions = {"app_a": [("10.0.0.9", "report-job"), (None, "")]}
    issuer, catalog, logins = alternating(monkeypatch, sessions=sessions, logs_in={"app_b": True})
    assert issuer.test("pw", key_id="app_b") is True and issuer.test("pw", key_id="app_a") is False
    assert logins == ["app_b", "app_a"]
    assert issuer.test("pw") is None  # which role is unknown
    assert issuer.exists("app_a") is True and issuer.exists("app_b") is False
    assert issuer.restore("old-password") is False  # the old role was never changed
    uses = issuer.usage("app_a", "2024-08-15T10:30:00Z")
    assert [u["source"] for u in uses] == ["10.0.0.9 (report-job, connected since 2024-08-15T10:00:00Z)",
                                           "local socket (no application_name, connected since 2024-08-15T10:00:00Z)"]
    assert all(u["time"] >= "2024" for u in uses)  # open now: a use after any verification time
    assert issuer.usage("app_b", "2024-08-15T10:30:00Z") == []
    assert PostgresIssuer({"role": "app"}, "db").usage("app@x", "2024-01-01T00:00:00Z") is None


@pytest.mark.parametrize("config, text", [
    ({"roles": ["app_a", "app_b"], "role": "app"}, "issuer.role and issuer.roles are both set"),
    ({"roles": ["app_a"]}, "exactly two different roles"),
    ({"roles": ["app_a", "app_a"]}, "exactly two different roles"),
    ({"roles": ["app_a", ""]}, "exactly two different roles"),
])
def test_postgres_alternating_config(config, text):
    with pytest.raises(RotationError) as err:
        PostgresIssuer(config, "orders-db")
    assert text in str(err.value) and err.value.step == "preflight"


def test_revoke_key_with_alternating_roles(monkeypatch):
    issuer, catalog, logins = alternating(monkeypatch, a_login=True, b_login=True)
    with pytest.raises(RotationError) as err:
        revoke_key.revoke(issuer, _params(key_id=None, secret="old"), False, lambda m: None)
    assert "key_id is required" in str(err.value)
    # the guard sees the old role's open session and revokes nothing
    catalog.sessions["app_a"] = [("10.0.0.9", "report-job")]
    with pytest.raises(RotationError) as err:
        revoke_key.revoke(issuer, _params(key_id="app_a", secret="old", unused_since="2024-08-15T10:30:00Z"),
                          False, lambda m: None)
    assert "10.0.0.9 (report-job" in str(err.value) and catalog.altered == []
    # a rollback: nothing to restore, the new role made idle again and proven dead
    changed, out = revoke_key.revoke(issuer, _params(key_id="app_b", secret="new", restore_secret="old",
                                                     prove_dead=True), False, lambda m: None)
    assert changed is True and out["restored"] is False and out["proven_dead"] is True
    assert catalog.roles["app_b"]["login"] is False and logins == ["app_b"]
