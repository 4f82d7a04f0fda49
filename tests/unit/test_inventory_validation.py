"""Preflight validation of rotation_credentials: every error at once, named by field path."""
import copy
import datetime

import pytest
import yaml

from ansible_collections.credops.rotation.plugins.module_utils._inventory import checks, fields, model, normalize, validation

# The contract's example, as written in /shared/spec/inventory.md (templates resolved).
CONTRACT = yaml.safe_load(r"""
rotation_credentials:
  payment-gateway-api:
    type: api_key
    risk: high
    max_age_days: 30
    rotation_contact: payments-team@example.org
    last_rotated: "2024-08-15T10:30:00Z"
    issuer:
      kind: rest
      base_url: https://api.provider.example.com
      auth: {type: bearer, token: "admin-token-from-env"}
      create:
        method: POST
        path: /v1/api-keys
        body: {name: production-integration, permissions: [read, write]}
        expect_status: [200, 201]
        secret_path: api_key
        id_path: id
      revoke:
        method: DELETE
        path: /v1/api-keys/{id}
      test:
        method: GET
        path: /v1/test
        header: Authorization
        format: "Bearer {secret}"
      usage:
        method: GET
        path: "/v1/audit-log?api_key_id={id}&since={since}"
        events_path: entries
        time_path: timestamp
        source_path: source_ip
    store:
      kind: vault_kv2
      url: "https://vault.example.org:8200"
      mount: secret
      path: api-credentials/payment-gateway-api
      field: api_key
    consumers:
      - name: web-app
        kind: systemd
        hosts: web
        env_file: /etc/application/environment
        env_var: PAYMENT_API_KEY
        service: application.service
        verify:
          url: "http://{{ inventory_hostname }}:8080/health/payment-integration"
          status: 200
          json: {payment_gateway: connected}
      - name: mobile-backend
        kind: kubernetes
        cluster: prod-cluster
        namespace: payments
        external_secret: payment-gateway-secret
        secret: payment-gateway-secret
        deployments: [mobile-backend]
        verify: {url: "https://mobile.example.org/health/external-services", json: {payment_gateway: connected}}
      - name: batch-processor
        kind: batch
        hosts: batch
""")["rotation_credentials"]

OTHERS = yaml.safe_load(r"""
integration-aws-key:
  type: api_key
  rotation_contact: platform@example.org
  issuer: {kind: aws_iam, user_name: integration-service-account}
  store: {kind: aws_secretsmanager, secret_id: integration-aws-key}
  consumers:
    - {name: exporter, kind: systemd, hosts: web1, env_file: /etc/exporter/env, env_var: AWS_SECRET_ACCESS_KEY,
       service: exporter.service}
billing-db:
  type: database
  risk: high
  rotation_contact: dba@example.org
  issuer: {kind: postgres, host: db.example.org, port: 5432, db: billing, admin_user: rotation_admin, role: billing_app}
  store: {kind: vault_kv2, path: db/billing}
  consumers:
    - {name: billing, kind: systemd, hosts: [web1, web2], env_file: /etc/billing/env, env_var: DB_PASSWORD,
       service: billing.service}
api-tls:
  type: certificate
  rotation_contact: web@example.org
  issuer: {kind: vault_pki, mount: pki, role: web, common_name: api.example.org, ttl: 2160h}
  store: {kind: vault_kv2, path: tls/api, field: private_key}
  consumers:
    - {name: api, kind: systemd, hosts: web, cert_file: /etc/api/tls.crt, key_file: /etc/api/tls.key, service: api.service,
       verify: {url: "https://api.example.org/health"}}
orders-webhook:
  type: webhook_secret
  rotation_contact: orders@example.org
  issuer: {kind: generated, length: 48}
  store: {kind: vault_kv2, path: webhooks/orders}
  consumers:
    - {name: receiver, kind: batch, hosts: batch}
""")

GROUPS = {"all": ["web1", "web2", "prod-cluster", "batch1", "localhost"], "ungrouped": ["prod-cluster"],
          "web": ["web1", "web2"], "batch": ["batch1"]}
HOSTS = ["web1", "web2", "prod-cluster", "batch1", "localhost"]
NOW = datetime.datetime(2024, 9, 1, tzinfo=datetime.timezone.utc)
NAME = "payment-gateway-api"


def validate(credentials):
    return validation.validate(credentials, GROUPS, HOSTS, NOW)


def test_the_contract_example_passes_without_errors_or_warnings():
    errors, warnings = validate(CONTRACT)
    assert errors == [] and warnings == []


def test_every_issuer_and_store_kind_passes():
    credentials = dict(copy.deepcopy(CONTRACT), **copy.deepcopy(OTHERS))
    errors, warnings = validate(credentials)
    assert errors == [] and warnings == []


def _set(record, path, value):
    """Set (or with value DELETE, remove) a dotted/indexed path like consumers[0].env_var."""
    parts = []
    for part in path.split("."):
        while "[" in part:
            head, rest = part.split("[", 1)
            if head:
                parts.append(head)
            index, part = rest.split("]", 1)
            parts.append(int(index))
        if part:
            parts.append(part)
    target = record
    for part in parts[:-1]:
        target = target[part]
    if value is DELETE:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value


DELETE = object()

# (id, field path, new value or DELETE, expected text in the one error naming that path)
BAD = [
    ("type-unknown", "type", "password", "payment-gateway-api.type: unknown type 'password'. Fix: use one of: api_key"),
    ("type-missing", "type", DELETE, "payment-gateway-api.type: missing. Fix: set type to one of"),
    ("risk-unknown", "risk", "critical", "payment-gateway-api.risk: unknown risk 'critical'. Fix: use standard"),
    ("max-age-zero", "max_age_days", 0, "payment-gateway-api.max_age_days: must be a positive whole number of days, got 0"),
    ("max-age-negative", "max_age_days", -5, "max_age_days: must be a positive whole number of days, got -5"),
    ("max-age-string", "max_age_days", "30d", "max_age_days: must be a positive whole number of days, got '30d'"),
    ("max-age-bool", "max_age_days", True, "max_age_days: must be a positive whole number of days, got True"),
    ("max-age-float", "max_age_days", 7.5, "max_age_days: must be a positive whole number of days, got 7.5"),
    ("contact-missing", "rotation_contact", DELETE, "payment-gateway-api.rotation_contact: missing or empty. Fix: name who owns"),
    ("contact-list", "rotation_contact", ["a@b"], "rotation_contact: must be a string, got list"),
    ("last-rotated-bad", "last_rotated", "last tuesday", "payment-gateway-api.last_rotated: 'last tuesday' is not an ISO-8601 time"),
    ("last-rotated-future", "last_rotated", "2030-01-01T00:00:00Z", "last_rotated: 2030-01-01T00:00:00Z is in the future"),
    ("issuer-missing", "issuer", DELETE, "payment-gateway-api.issuer: missing. Fix: add an issuer mapping"),
    ("issuer-kind-unknown", "issuer.kind", "ldap", "payment-gateway-api.issuer.kind: unknown issuer kind 'ldap'"),
    ("issuer-incompatible", "issuer.kind", "postgres",
     "payment-gateway-api.issuer.kind: type api_key cannot be issued by postgres. Fix: use issuer kind rest or aws_iam or generated"),
    ("base-url-not-url", "issuer.base_url", "api.provider.example.com", "issuer.base_url: 'api.provider.example.com' is not an http(s) URL"),
    ("base-url-missing", "issuer.base_url", DELETE, "issuer.base_url: missing. Fix: give the API's base URL"),
    ("auth-type-unknown", "issuer.auth", {"type": "oauth"}, "issuer.auth.type: unknown auth type 'oauth'. Fix: use bearer (token), basic"),
    ("auth-basic-no-password", "issuer.auth", {"type": "basic", "username": "admin"}, "issuer.auth.password: missing or empty (needed by auth type basic)"),
    ("auth-header-bad-name", "issuer.auth", {"type": "header", "name": "X Admin", "value": "v"}, "issuer.auth.name: 'X Admin' is not an HTTP header name"),
    ("create-missing", "issuer.create", DELETE, "issuer.create: missing. Fix: describe the request that makes a new key"),
    ("create-method", "issuer.create.method", "FETCH", "issuer.create.method: unknown HTTP method 'FETCH'"),
    ("create-path-relative", "issuer.create.path", "v1/api-keys", "issuer.create.path: 'v1/api-keys' must start with '/'"),
    ("secret-path-bad-jmespath", "issuer.create.secret_path", "data.[key", "issuer.create.secret_path: 'data.[key' is not a valid JMESPath"),
    ("secret-path-missing", "issuer.create.secret_path", DELETE, "issuer.create.secret_path: missing. Fix: give a JMESPath into the response"),
    ("id-path-bad-jmespath", "issuer.create.id_path", "items[?id==", "issuer.create.id_path: 'items[?id==' is not a valid JMESPath"),
    ("id-path-missing-with-revoke", "issuer.create.id_path", DELETE, "issuer.create.id_path: missing"),
    ("expect-status-bad", "issuer.create.expect_status", [200, "created"], "issuer.create.expect_status: [200, 'created'] is not an HTTP status"),
    ("body-and-form", "issuer.create.form", {"name": "x"}, "issuer.create: both body and form are given"),
    ("revoke-no-id", "issuer.revoke.path", "/v1/api-keys", "issuer.revoke.path: '/v1/api-keys' has no {id}. Fix: put {id} where the key's id goes"),
    ("revoke-unknown-placeholder", "issuer.revoke.path", "/v1/api-keys/{key}", "issuer.revoke.path: unknown placeholder {key}"),
    ("revoke-missing", "issuer.revoke", DELETE, "issuer.revoke: missing. Fix: describe the request that revokes a key"),
    ("test-header-missing", "issuer.test.header", DELETE, "issuer.test.header: missing. Fix: name the header that carries the key"),
    ("test-format-no-secret", "issuer.test.format", "Bearer {key}", "issuer.test.format: 'Bearer {key}' does not contain {secret}"),
    ("usage-no-id", "issuer.usage.path", "/v1/audit-log?since={since}", "issuer.usage.path: '/v1/audit-log?since={since}' has no {id}"),
    ("usage-events-path-bad", "issuer.usage.events_path", "entries[", "issuer.usage.events_path: 'entries[' is not a valid JMESPath"),
    ("usage-time-path-missing", "issuer.usage.time_path", DELETE, "issuer.usage.time_path: missing"),
    ("usage-source-path-bad", "issuer.usage.source_path", "@@", "issuer.usage.source_path: '@@' is not a valid JMESPath"),
    ("store-missing", "store", DELETE, "payment-gateway-api.store: missing. Fix: add a store mapping with kind: vault_kv2, aws_secretsmanager"),
    ("store-kind-unknown", "store.kind", "keepass", "payment-gateway-api.store.kind: unknown store kind 'keepass'"),
    ("store-path-missing", "store.path", DELETE, "payment-gateway-api.store.path: missing or empty. Fix: give the secret's path"),
    ("store-path-data-prefix", "store.path", "data/api-credentials/x", "store.path: 'data/api-credentials/x' starts with the KV v2 API's data/ segment"),
    ("store-path-slash", "store.path", "/api-credentials/x", "store.path: '/api-credentials/x' has a leading or trailing '/'"),
    ("store-mount-slash", "store.mount", "secret/", "store.mount: 'secret/' is not a mount name"),
    ("store-field-reserved", "store.field", "previous_api_key", "store.field: 'previous_api_key' is reserved"),
    ("store-field-key-id", "store.field", "key_id", "store.field: 'key_id' is reserved"),
    ("store-url-bad", "store.url", "vault:8200", "store.url: 'vault:8200' is not an http(s) URL"),
    ("consumers-missing", "consumers", DELETE, "payment-gateway-api.consumers: missing or empty. Fix: list every application"),
    ("consumers-mapping", "consumers", {"name": "x"}, "payment-gateway-api.consumers: must be a list of consumers, got dict"),
    ("consumer-kind-unknown", "consumers[0].kind", "docker", "payment-gateway-api.consumers[0].kind: unknown consumer kind 'docker'"),
    ("consumer-name-duplicate", "consumers[2].name", "web-app", "payment-gateway-api.consumers[2].name: 'web-app' is already used by consumers[0]"),
    ("consumer-name-comma", "consumers[0].name", "web,app", "consumers[0].name: 'web,app' has characters that cannot be recorded"),
    ("consumer-name-list", "consumers[0].name", ["web-app"], "payment-gateway-api.consumers[0].name: must be a string"),
    ("consumer-name-mapping", "consumers[0].name", {"app": "web"}, "payment-gateway-api.consumers[0].name: must be a string"),
    ("host-not-in-inventory", "consumers[0].hosts", "webservers",
     "payment-gateway-api.consumers[0].hosts: 'webservers' is neither a host nor a group of the inventory"),
    ("host-pattern", "consumers[0].hosts", "web:&prod", "consumers[0].hosts: 'web:&prod' is a host pattern"),
    ("hosts-missing", "consumers[0].hosts", DELETE, "payment-gateway-api.consumers[0].hosts: missing"),
    ("env-var-invalid", "consumers[0].env_var", "PAYMENT-API-KEY",
     "payment-gateway-api.consumers[0].env_var: 'PAYMENT-API-KEY' is not a valid environment variable name. Fix: use letters, digits and underscores"),
    ("env-var-digit", "consumers[0].env_var", "1KEY", "consumers[0].env_var: '1KEY' is not a valid environment variable name"),
    ("env-var-missing", "consumers[0].env_var", DELETE, "payment-gateway-api.consumers[0].env_var: missing. Fix: name the variable"),
    ("env-file-relative", "consumers[0].env_file", "etc/application/environment",
     "consumers[0].env_file: 'etc/application/environment' is not an absolute path"),
    ("service-missing", "consumers[0].service", DELETE, "payment-gateway-api.consumers[0].service: missing or empty. Fix: name the systemd unit"),
    ("service-bad", "consumers[0].service", "my app", "consumers[0].service: 'my app' is not a systemd unit name"),
    ("verify-url-bad", "consumers[0].verify.url", "localhost:8080/health", "consumers[0].verify.url: 'localhost:8080/health' is not an http(s) URL"),
    ("verify-url-missing", "consumers[1].verify.url", DELETE, "consumers[1].verify.url: missing"),
    ("verify-status-bad", "consumers[0].verify.status", 999, "consumers[0].verify.status: 999 is not an HTTP status"),
    ("verify-json-bad-key", "consumers[0].verify.json", {"a..b": 1}, "consumers[0].verify.json['a..b']: 'a..b' is not a valid JMESPath"),
    ("verify-json-list", "consumers[0].verify.json", ["a"], "consumers[0].verify.json: must be a mapping of JMESPath"),
    ("k8s-cluster-missing", "consumers[1].cluster", "staging-cluster", "consumers[1].cluster: 'staging-cluster' is neither a host nor a group"),
    ("k8s-namespace-bad", "consumers[1].namespace", "Payments_NS", "consumers[1].namespace: 'Payments_NS' is not a Kubernetes namespace name"),
    ("k8s-no-secret", "consumers[1].secret", DELETE, None),  # with external_secret still there: valid
    ("k8s-deployments-string", "consumers[1].deployments", "mobile-backend",
     "consumers[1].deployments: must be a list of Deployment names. Fix: write e.g. `deployments: [mobile-backend]`"),
    ("k8s-deployments-missing", "consumers[1].deployments", DELETE, "consumers[1].deployments: missing or empty"),
    ("k8s-deployment-bad", "consumers[1].deployments", ["Mobile_Backend"], "consumers[1].deployments[0]: 'Mobile_Backend' is not a Deployment name"),
    ("k8s-secret-bad", "consumers[1].secret", "Payment Secret", "consumers[1].secret: 'Payment Secret' is not a Kubernetes object name"),
    ("batch-host-unknown", "consumers[2].hosts", "nightly", "consumers[2].hosts: 'nightly' is neither a host nor a group"),
]


@pytest.mark.parametrize("case_id,path,value,expected", BAD, ids=[b[0] for b in BAD])
def test_bad_input_names_credential_field_and_fix(case_id, path, value, expected):
    credentials = copy.deepcopy(CONTRACT)
    _set(credentials[NAME], path, value)
    errors, _warnings = validate(credentials)
    if expected is None:
        assert errors == []
        return
    assert any(expected in e for e in errors), "expected %r in %r" % (expected, errors)
    for error in errors:
        assert error.startswith(NAME + "."), error
        assert ". Fix: " in error, error
    assert "admin-token-from-env" not in " ".join(errors)


BAD_OTHER_KINDS = [
    ("aws-user-missing", "integration-aws-key", "issuer.user_name", DELETE, "integration-aws-key.issuer.user_name: missing or empty"),
    ("aws-user-bad", "integration-aws-key", "issuer.user_name", "bad user!", "issuer.user_name: 'bad user!' is not a valid IAM user name"),
    ("aws-secret-id-missing", "integration-aws-key", "store.secret_id", DELETE, "integration-aws-key.store.secret_id: missing or empty"),
    ("aws-secret-id-bad", "integration-aws-key", "store.secret_id", "my secret", "store.secret_id: 'my secret' is not a Secrets Manager name or ARN"),
    ("pg-port", "billing-db", "issuer.port", 70000, "billing-db.issuer.port: 70000 is not a TCP port"),
    ("pg-role-missing", "billing-db", "issuer.role", DELETE, "billing-db.issuer.role: missing or empty. Fix: set it, e.g. `role: app_user`"),
    ("pg-db-missing", "billing-db", "issuer.db", DELETE, "billing-db.issuer.db: missing or empty"),
    ("pg-admin-missing", "billing-db", "issuer.admin_user", DELETE, "billing-db.issuer.admin_user: missing or empty"),
    ("pg-host-missing", "billing-db", "issuer.host", DELETE, "billing-db.issuer.host: missing or empty"),
    ("db-by-rest", "billing-db", "issuer", {"kind": "aws_iam", "user_name": "x"},
     "billing-db.issuer.kind: type database cannot be issued by aws_iam. Fix: use issuer kind postgres or generated"),
    ("pki-ttl-missing", "api-tls", "issuer.ttl", DELETE, "api-tls.issuer.ttl: missing. Fix: give the certificate lifetime"),
    ("pki-ttl-bad", "api-tls", "issuer.ttl", "90 days", "api-tls.issuer.ttl: '90 days' is not a duration"),
    ("pki-cn-missing", "api-tls", "issuer.common_name", DELETE, "api-tls.issuer.common_name: missing or empty"),
    ("pki-mount-missing", "api-tls", "issuer.mount", DELETE, "api-tls.issuer.mount: missing or empty"),
    ("cert-by-generated", "api-tls", "issuer", {"kind": "generated"},
     "api-tls.issuer.kind: type certificate cannot be issued by generated. Fix: use issuer kind vault_pki"),
    ("webhook-by-rest", "orders-webhook", "issuer.kind", "rest",
     "orders-webhook.issuer.kind: type webhook_secret cannot be issued by rest. Fix: use issuer kind generated"),
    ("generated-short", "orders-webhook", "issuer.length", 8, "orders-webhook.issuer.length: 8 is too short or not a number. Fix: use at least 16 characters"),
    ("generated-alphabet", "orders-webhook", "issuer.alphabet", "a",
     "orders-webhook.issuer.alphabet: must be a non-empty string of at least two distinct characters"),
]


@pytest.mark.parametrize("case_id,name,path,value,expected", BAD_OTHER_KINDS, ids=[b[0] for b in BAD_OTHER_KINDS])
def test_bad_input_other_kinds(case_id, name, path, value, expected):
    credentials = copy.deepcopy(OTHERS)
    _set(credentials[name], path, value)
    errors, _warnings = validate(credentials)
    assert any(expected in e for e in errors), "expected %r in %r" % (expected, errors)
    assert all(e.startswith(name + ".") for e in errors), errors


def test_all_errors_at_once_across_credentials():
    credentials = dict(copy.deepcopy(CONTRACT), **copy.deepcopy(OTHERS))
    credentials[NAME]["type"] = "password"
    credentials[NAME]["consumers"][0]["env_var"] = "BAD-NAME"
    credentials["billing-db"]["issuer"]["port"] = "5432x"
    credentials["api-tls"]["store"]["kind"] = "keepass"
    errors, _warnings = validate(credentials)
    paths = sorted(e.split(":", 1)[0] for e in errors)
    assert paths == ["api-tls.store.kind", "billing-db.issuer.port", NAME + ".consumers[0].env_var", NAME + ".type"]


def test_two_credentials_writing_the_same_variable_conflict():
    credentials = copy.deepcopy(OTHERS)
    exporter = credentials["integration-aws-key"]["consumers"][0]
    exporter.update(env_file="/etc/billing/env", env_var="DB_PASSWORD")
    errors, _warnings = validate(credentials)
    assert len(errors) == 1
    assert "DB_PASSWORD in /etc/billing/env on host web1 is also written by" in errors[0]


def test_kubernetes_consumer_needs_secret_or_external_secret():
    credentials = copy.deepcopy(CONTRACT)
    del credentials[NAME]["consumers"][1]["secret"]
    del credentials[NAME]["consumers"][1]["external_secret"]
    errors, _warnings = validate(credentials)
    assert errors == ["payment-gateway-api.consumers[1]: neither secret nor external_secret is given. Fix: name the "
                      "Kubernetes Secret to write (`secret:`) or the ExternalSecret to force-sync (`external_secret:`)."]


def test_external_secret_with_an_aws_secretsmanager_store_is_refused():
    credentials = copy.deepcopy(CONTRACT)
    credentials[NAME]["store"] = {"kind": "aws_secretsmanager", "secret_id": NAME}
    errors, _warnings = validate(credentials)
    assert len(errors) == 1
    assert errors[0].startswith("payment-gateway-api.consumers[1].external_secret: an ExternalSecret reads AWSCURRENT")
    assert "`secret: NAME` without `external_secret:`" in errors[0]
    del credentials[NAME]["consumers"][1]["external_secret"]
    assert validate(credentials)[0] == []


@pytest.mark.parametrize("value,problem", [
    (None, "rotation_credentials: is not defined"),
    (["a"], "rotation_credentials: must be a mapping of credential name to record, got list"),
    ({"bad name!": {}}, "bad name!: credential name 'bad name!' is not usable"),
    ({"x": "api_key"}, "x: the record must be a mapping, got str"),
])
def test_top_level_shape(value, problem):
    errors, _warnings = validate(value)
    assert any(problem in e for e in errors), errors


def test_unknown_fields_warn_but_do_not_fail():
    credentials = copy.deepcopy(CONTRACT)
    credentials[NAME]["owner_team"] = "payments"
    credentials[NAME]["consumers"][0]["restart_delay"] = 5
    credentials[NAME]["issuer"]["user_name"] = "svc"  # an aws_iam field on a rest issuer: ignored
    errors, warnings = validate(credentials)
    assert errors == []
    assert sorted(w.split(":", 1)[0] for w in warnings) == [
        NAME + ".consumers[0].restart_delay", NAME + ".issuer.user_name", NAME + ".owner_team"]
    assert all("unknown field, ignored" in w for w in warnings)


@pytest.mark.parametrize("block, field", [
    (("issuer", "create"), "timeout_s"),
    (("issuer", "create"), "headers"),
    (("issuer", "auth"), "tokn"),
    (("issuer",), "wait_seconds"),
    (("store",), "ca_path"),
    (("store",), "secret_id_typo"),
])
def test_fields_the_modules_would_refuse_are_errors(block, field):
    """The issuer and store blocks go to the modules whole; a field no module accepts would fail
    the run there, after the issue step for the store: preflight refuses it first."""
    credentials = copy.deepcopy(CONTRACT)
    target = credentials[NAME]
    for key in block:
        target = target[key]
    target[field] = "x"
    errors, _warnings = validate(credentials)
    path = ".".join((NAME,) + block + (field,))
    assert [e.split(":", 1)[0] for e in errors] == [path]
    assert "unknown field, the modules refuse it" in errors[0]


# Fields no specific check covers get the structural checks of the modules' argument spec
# (type, elements, choices): what a module would refuse once the run started, preflight refuses.
SPEC_CHECKED = [
    ("aws-revoke-mode", "integration-aws-key", "issuer.revoke_mode", "remove",
     "integration-aws-key.issuer.revoke_mode: 'remove' is not one of the choices. Fix: use one of: delete, deactivate."),
    ("aws-wait-timeout", "integration-aws-key", "issuer.wait_timeout", "long",
     "integration-aws-key.issuer.wait_timeout: 'long' is not a whole number. "
     "Fix: give a whole number, as the modules' argument spec declares it."),
    ("aws-delete-inactive", "integration-aws-key", "issuer.delete_inactive", "maybe",
     "integration-aws-key.issuer.delete_inactive: 'maybe' is not true or false. "
     "Fix: give true or false, as the modules' argument spec declares it."),
    ("http-timeout", "billing-db", "issuer.timeout", "slow",
     "billing-db.issuer.timeout: 'slow' is not a number. Fix: give a number, as the modules' argument spec declares it."),
    ("pki-alt-names", "api-tls", "issuer.alt_names", {"a": "b"},
     "api-tls.issuer.alt_names: {'a': 'b'} is not a list of strings. "
     "Fix: give a list of strings, as the modules' argument spec declares it."),
    ("store-timeout", "billing-db", "store.timeout", "soon",
     "billing-db.store.timeout: 'soon' is not a whole number. Fix: give a whole number, as the modules' argument spec declares it."),
    ("store-auth-method", "billing-db", "store.auth_method", "ldap",
     "billing-db.store.auth_method: 'ldap' is not one of the choices. Fix: use one of: token, approle."),
    ("aws-store-validate-certs", "integration-aws-key", "store.validate_certs", "sometimes",
     "integration-aws-key.store.validate_certs: 'sometimes' is not true or false. "
     "Fix: give true or false, as the modules' argument spec declares it."),
]


@pytest.mark.parametrize("case_id,name,path,value,expected", SPEC_CHECKED, ids=[b[0] for b in SPEC_CHECKED])
def test_the_argspec_structural_checks_name_credential_and_field(case_id, name, path, value, expected):
    credentials = copy.deepcopy(OTHERS)
    _set(credentials[name], path, value)
    assert validate(credentials)[0] == [expected]


@pytest.mark.parametrize("path, value", [
    ("store.timeout", "30"),             # the module converts it, as Ansible does
    ("issuer.validate_certs", "yes"),
    ("issuer.alt_names", "a.example.org,b.example.org"),
    ("store.timeout", "{{ store_timeout }}"),  # templated: shape only
])
def test_what_the_argspec_converts_or_a_template_passes(path, value):
    credentials = copy.deepcopy(OTHERS)
    _set(credentials["api-tls"], path, value)
    assert validate(credentials)[0] == []


def test_argspec_checks_do_not_repeat_a_specific_check():
    credentials = copy.deepcopy(OTHERS)
    credentials["billing-db"]["issuer"]["port"] = "not-a-port"
    assert validate(credentials)[0] == [
        "billing-db.issuer.port: 'not-a-port' is not a TCP port. Fix: write a number from 1 to 65535 (default 5432)."]


def test_argspec_checks_never_show_a_secret_value():
    report = checks.Report()
    checks.check_declared(report, "cred.issuer", {"pin": "s3cr3t-pin", "auth": {"code": "s3cr3t-code"}},
                          {"pin": dict(type="int", no_log=True),
                           "auth": dict(type="dict", options=dict(code=dict(type="int", no_log=True)))})
    assert report.errors == [
        "cred.issuer.pin: the value is not a whole number. Fix: give a whole number, as the modules' argument spec declares it.",
        "cred.issuer.auth.code: the value is not a whole number. "
        "Fix: give a whole number, as the modules' argument spec declares it."]


def test_the_postgres_sslmode_choices_are_the_argspec_s():
    from ansible_collections.credops.rotation.plugins.module_utils._issuers.registry import ISSUERS
    credentials = copy.deepcopy(OTHERS)
    credentials["billing-db"]["issuer"]["sslmode"] = "strict"
    assert validate(credentials)[0] == [
        "billing-db.issuer.sslmode: unknown sslmode 'strict'. Fix: use one of: %s."
        % ", ".join(ISSUERS["postgres"].ARGSPEC["sslmode"]["choices"])]


def test_every_field_the_modules_accept_is_known_to_preflight():
    from ansible_collections.credops.rotation.plugins.module_utils._issuers.registry import ISSUERS
    from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import STORE_ARGSPEC
    for kind, cls in ISSUERS.items():
        assert set(cls.ARGSPEC) <= set(fields.KNOWN["issuer." + kind])
    assert set(STORE_ARGSPEC) == set(fields.ACCEPTED["store"])
    assert set(fields.KNOWN["store.vault_kv2"]) | set(fields.KNOWN["store.aws_secretsmanager"]) == set(STORE_ARGSPEC)
    assert set(fields.KNOWN["create"]) == set(ISSUERS["rest"].ARGSPEC["create"]["options"])


def _without_defaults(spec):
    out = {}
    for name, option in spec.items():
        option = dict((k, v) for k, v in option.items() if k not in ("default", "required"))
        if "options" in option:
            option["options"] = _without_defaults(option["options"])
        out[name] = option
    return out


def test_the_sender_block_is_declared_as_the_webhook_sender_module_checks_it():
    """fields mirrors _sender.SENDER_ARGSPEC (importing _sender would load cryptography into preflight)."""
    from ansible_collections.credops.rotation.plugins.module_utils._sender import SENDER_ARGSPEC
    assert fields.SPECS["sender"] == _without_defaults(SENDER_ARGSPEC)


def test_relaxed_policy_and_plain_http_warn():
    credentials = copy.deepcopy(CONTRACT)
    credentials[NAME]["max_age_days"] = 120
    credentials[NAME]["issuer"]["base_url"] = "http://api.provider.example.com"
    errors, warnings = validate(credentials)
    assert errors == []
    assert any("120 days relaxes the policy table (30 days for api_key, high risk)" in w for w in warnings)
    assert any(w.startswith(NAME + ".issuer.base_url: plain http") for w in warnings)
    credentials[NAME]["issuer"]["base_url"] = "http://127.0.0.1:8000"
    assert not any("plain http" in w for w in validate(credentials)[1])


def test_secret_values_never_appear_in_messages():
    credentials = copy.deepcopy(CONTRACT)
    credentials[NAME]["issuer"]["auth"] = {"type": "header", "name": "X Bad", "value": "s3cr3t-header-value"}
    credentials[NAME]["issuer"]["auth"]["extra"] = "s3cr3t-extra"
    errors, warnings = validate(credentials)
    assert errors and "s3cr3t" not in " ".join(errors + warnings)


def test_check_secrets_false_allows_a_missing_admin_token():
    credentials = copy.deepcopy(CONTRACT)
    credentials[NAME]["issuer"]["auth"]["token"] = ""
    assert validate(credentials)[0] == [
        "payment-gateway-api.issuer.auth.token: missing or empty (needed by auth type bearer). "
        "Fix: set it, from the environment or Ansible Vault rather than in clear."]
    assert validation.validate(credentials, GROUPS, HOSTS, NOW, check_secrets=False)[0] == []


def test_without_inventory_hosts_are_not_checked():
    credentials = copy.deepcopy(CONTRACT)
    credentials[NAME]["consumers"][0]["hosts"] = "somewhere"
    assert validation.validate(credentials, None, None, NOW)[0] == []


def test_templated_values_are_shape_checked_only():
    credentials = copy.deepcopy(CONTRACT)
    credentials[NAME]["store"]["url"] = "{{ vault_addr }}"
    assert validate(credentials)[0] == []


def test_normalize_fills_defaults_and_does_not_mutate():
    original = copy.deepcopy(OTHERS)
    normal = normalize.normalize_all(OTHERS)
    assert OTHERS == original
    db = normal["billing-db"]
    assert db["name"] == "billing-db" and db["risk"] == "high"
    assert db["store"]["field"] == "value" and db["store"]["mount"] == "secret"
    assert normal["integration-aws-key"]["risk"] == "standard"
    assert normal["integration-aws-key"]["store"] == {"kind": "aws_secretsmanager", "secret_id": "integration-aws-key"}
    assert normal["api-tls"]["consumers"][0]["verify"]["status"] == [200]
    pay = normalize.normalize(NAME, CONTRACT[NAME])
    assert pay["issuer"]["revoke"]["method"] == "DELETE" and pay["issuer"]["test"]["format"] == "Bearer {secret}"
    assert pay["store"]["field"] == "api_key"
    assert pay["last_rotated"] == "2024-08-15T10:30:00Z"
    assert normalize.normalize("x", {"type": "api_key", "last_rotated": datetime.date(2024, 1, 2)})["last_rotated"] \
        == "2024-01-02T00:00:00Z"
    assert normalize.normalize("x", {})["consumers"] == []


def test_resolve_reports_values_that_cannot_be_templated():
    class Lazy(dict):
        def __getitem__(self, key):
            if key == "url":
                raise RuntimeError("'vault_addr' is undefined")
            return dict.__getitem__(self, key)

    problems = []
    plain = model.resolve({"x": {"store": Lazy(kind="vault_kv2", url="{{ vault_addr }}")}}, "", problems)
    assert plain == {"x": {"store": {"kind": "vault_kv2", "url": None}}}
    assert [(p, model.first_line(e)) for p, e in problems] == [("x.store.url", "'vault_addr' is undefined")]


# --- webhook_rotate.yml: the sender block and the receivers' delivery logs ------------------

WEBHOOK = yaml.safe_load(r"""
payments-webhook:
  type: webhook_secret
  risk: high
  rotation_contact: orders@example.org
  issuer: {kind: generated, length: 48}
  store: {kind: vault_kv2, path: webhooks/orders, field: signing_secret}
  sender:
    base_url: https://api.sender.example.com
    auth: {type: bearer, token: "sender-admin-token-from-env"}
    webhook_id: we_1NkQ
    switch:
      method: PATCH
      path: "/v1/webhooks/{id}"
      body: {secret: "{secret}"}
      expect_status: [200]
    test:
      method: POST
      path: "/v1/webhooks/{id}/test"
      json: {delivered: true}
    signature: {header: X-Webhook-Signature, format: "t={timestamp},v1={signature}"}
  consumers:
    - name: orders-receiver
      kind: systemd
      hosts: web
      env_file: /etc/orders-receiver/environment
      env_var: ORDERS_WEBHOOK_SECRET
      service: orders-receiver.service
      verify: {url: "http://{{ inventory_hostname }}:8091/webhook", status: 200}
      deliveries: {url: "http://{{ inventory_hostname }}:8091/deliveries", list_path: deliveries, matched_path: matched}
""")
WH = "payments-webhook"


def test_a_webhook_credential_with_sender_passes():
    errors, warnings = validate(copy.deepcopy(WEBHOOK))
    assert errors == [] and warnings == []
    record = copy.deepcopy(WEBHOOK)
    record[WH]["sender"]["webhook_id"] = ["we_1", 4711]
    record[WH]["sender"]["auth"] = {"type": "basic", "username": "ops", "password": "pw-from-env"}
    record[WH]["sender"]["switch"] = {"path": "/hooks/{id}", "form": {"signing_secret": "{secret}"}}
    del record[WH]["sender"]["test"]
    assert validate(record) == ([], [])


BAD_SENDER = [
    ("sender-not-mapping", "sender", "https://api.sender.example.com", "payments-webhook.sender: must be a mapping, got str"),
    ("sender-base-url-missing", "sender.base_url", DELETE, "payments-webhook.sender.base_url: missing. Fix: give the sender API's base URL"),
    ("sender-base-url-bad", "sender.base_url", "api.sender.example.com", "sender.base_url: 'api.sender.example.com' is not an http(s) URL"),
    ("sender-auth-missing", "sender.auth", DELETE, "payments-webhook.sender.auth: missing. Fix: give the sender API's admin credentials"),
    ("sender-auth-type", "sender.auth", {"type": "oauth"}, "sender.auth.type: unknown auth type 'oauth'"),
    ("sender-auth-token-empty", "sender.auth.token", "", "sender.auth.token: missing or empty (needed by auth type bearer)"),
    ("sender-auth-header-name", "sender.auth", {"type": "header", "name": "X Key", "value": "v-secret"},
     "sender.auth.name: 'X Key' is not an HTTP header name"),
    ("webhook-id-missing", "sender.webhook_id", DELETE, "payments-webhook.sender.webhook_id: missing. Fix: give the id"),
    ("webhook-id-empty-list", "sender.webhook_id", [], "sender.webhook_id: missing"),
    ("webhook-id-mapping", "sender.webhook_id", {"id": 1}, "sender.webhook_id: {'id': 1} is not a webhook id"),
    ("sender-validate-certs", "sender.validate_certs", "maybe",
     "payments-webhook.sender.validate_certs: 'maybe' is not true or false. Fix: give true or false, as the modules'"),
    ("sender-headers", "sender.headers", ["X-A: 1"],
     "payments-webhook.sender.headers: ['X-A: 1'] is not a mapping. Fix: give a mapping, as the modules'"),
    ("webhook-id-bool", "sender.webhook_id", True, "sender.webhook_id: True is not a webhook id"),
    ("webhook-id-path", "sender.webhook_id", "hooks/we_1", "sender.webhook_id: 'hooks/we_1' has characters an id cannot have"),
    ("switch-missing", "sender.switch", DELETE, "payments-webhook.sender.switch: missing. Fix: describe the request that sets the signing secret"),
    ("switch-method", "sender.switch.method", "REPLACE", "sender.switch.method: unknown HTTP method 'REPLACE'"),
    ("switch-path-relative", "sender.switch.path", "v1/webhooks/{id}", "sender.switch.path: 'v1/webhooks/{id}' must start with '/'"),
    ("switch-path-placeholder", "sender.switch.path", "/v1/webhooks/{webhook}", "sender.switch.path: unknown placeholder {webhook}"),
    ("switch-path-missing", "sender.switch.path", DELETE, "sender.switch.path: missing"),
    ("switch-no-secret", "sender.switch.body", {"secret": "whsec_fixed"}, "sender.switch.body: does not carry the new secret"),
    ("switch-body-and-form", "sender.switch.form", {"secret": "{secret}"}, "sender.switch: both body and form are given"),
    ("switch-status", "sender.switch.expect_status", ["ok"], "sender.switch.expect_status: ['ok'] is not an HTTP status"),
    ("test-path-placeholder", "sender.test.path", "/v1/webhooks/{id}/test/{n}", "sender.test.path: unknown placeholder {n}"),
    ("test-json-bad", "sender.test.json", {"delivered[": True}, "sender.test.json['delivered[']: 'delivered[' is not a valid JMESPath"),
    ("test-json-list", "sender.test.json", ["delivered"], "sender.test.json: must be a mapping of JMESPath"),
    ("signature-header", "sender.signature.header", "X Sig", "sender.signature.header: 'X Sig' is not an HTTP header name"),
    ("signature-format", "sender.signature.format", "sha256={hmac}", "sender.signature.format: 'sha256={hmac}' does not contain {signature}"),
    ("signature-payload", "sender.signature.payload_format", "{timestamp}", "sender.signature.payload_format: '{timestamp}' does not contain {payload}"),
    ("sender-timeout", "sender.timeout", "slow", "sender.timeout: 'slow' is not a non-negative number"),
    ("deliveries-url", "consumers[0].deliveries.url", "host:8091/deliveries", "consumers[0].deliveries.url: 'host:8091/deliveries' is not an http(s) URL"),
    ("deliveries-url-missing", "consumers[0].deliveries.url", DELETE, "consumers[0].deliveries.url: missing"),
    ("deliveries-list-path", "consumers[0].deliveries.list_path", "items[", "consumers[0].deliveries.list_path: 'items[' is not a valid JMESPath"),
    ("deliveries-matched-path", "consumers[0].deliveries.matched_path", "a..b", "consumers[0].deliveries.matched_path: 'a..b' is not a valid JMESPath"),
    ("deliveries-list", "consumers[0].deliveries", ["http://x/deliveries"], "consumers[0].deliveries: must be a mapping"),
    ("sender-on-api-key", "type", "api_key", "payments-webhook.sender: only a webhook_secret has a sender (this is a api_key)"),
]


@pytest.mark.parametrize("case_id,path,value,expected", BAD_SENDER, ids=[b[0] for b in BAD_SENDER])
def test_bad_sender_input_names_credential_field_and_fix(case_id, path, value, expected):
    credentials = copy.deepcopy(WEBHOOK)
    _set(credentials[WH], path, value)
    errors, _warnings = validate(credentials)
    assert any(expected in e for e in errors), "expected %r in %r" % (expected, errors)
    for error in errors:
        assert error.startswith(WH + "."), error
        assert ". Fix: " in error, error
    assert "sender-admin-token-from-env" not in " ".join(errors) and "v-secret" not in " ".join(errors)


def test_unknown_sender_fields_warn():
    credentials = copy.deepcopy(WEBHOOK)
    credentials[WH]["sender"]["owner"] = "payments"
    credentials[WH]["sender"]["switch"]["retry"] = 2
    errors, warnings = validate(credentials)
    assert errors == []
    assert sorted(w.split(":", 1)[0] for w in warnings) == [WH + ".sender.owner", WH + ".sender.switch.retry"]


def test_another_credential_writing_the_receivers_new_or_old_variable_conflicts():
    credentials = dict(copy.deepcopy(WEBHOOK), **copy.deepcopy(OTHERS))
    exporter = credentials["integration-aws-key"]["consumers"][0]
    exporter.update(env_file="/etc/orders-receiver/environment", env_var="ORDERS_WEBHOOK_SECRET_NEW")
    errors, _warnings = validate(credentials)
    assert len(errors) == 1, errors
    assert "ORDERS_WEBHOOK_SECRET_NEW in /etc/orders-receiver/environment on host web1 is also written by" in errors[0]


# --- database and AWS rotation: id_env_var on systemd consumers, alternating postgres roles ---

IDS = yaml.safe_load(r"""
integration-aws-key:
  type: api_key
  rotation_contact: platform@example.org
  issuer: {kind: aws_iam, user_name: integration-service-account}
  store: {kind: aws_secretsmanager, secret_id: integration-aws-key, field: aws_secret_access_key}
  consumers:
    - {name: exporter, kind: systemd, hosts: web, env_file: /etc/exporter/env, env_var: AWS_SECRET_ACCESS_KEY,
       id_env_var: AWS_ACCESS_KEY_ID, service: exporter.service}
orders-db:
  type: database
  rotation_contact: dba@example.org
  issuer: {kind: postgres, host: db.example.org, db: orders, admin_user: rotation_admin,
           roles: [orders_app_a, orders_app_b]}
  store: {kind: vault_kv2, path: db/orders, field: password}
  consumers:
    - {name: orders, kind: systemd, hosts: web, env_file: /etc/orders/env, env_var: DB_PASSWORD,
       id_env_var: DB_USER, service: orders.service}
""")
REST_WITHOUT_IDS = {"kind": "rest", "base_url": "https://api.example.com", "auth": {"type": "bearer", "token": "t"},
                    "create": {"path": "/v1/keys", "secret_path": "key"}, "revoke": {"path": "/v1/keys/{id}"}}


def test_id_env_var_and_alternating_roles_pass():
    assert validate(copy.deepcopy(IDS)) == ([], [])
    single = copy.deepcopy(IDS)
    del single["orders-db"]["consumers"][0]["id_env_var"]
    single["orders-db"]["issuer"]["role"] = single["orders-db"]["issuer"].pop("roles")[0]
    assert validate(single) == ([], [])


BAD_IDS = [
    ("id-env-var-invalid", "integration-aws-key", "consumers[0].id_env_var", "AWS-ACCESS-KEY-ID",
     "integration-aws-key.consumers[0].id_env_var: 'AWS-ACCESS-KEY-ID' is not a valid environment variable name"),
    ("id-env-var-empty", "integration-aws-key", "consumers[0].id_env_var", "",
     "consumers[0].id_env_var: '' is not a valid environment variable name. Fix: name the variable that gets the key id"),
    ("id-env-var-list", "integration-aws-key", "consumers[0].id_env_var", ["AWS_ACCESS_KEY_ID"],
     "consumers[0].id_env_var: ['AWS_ACCESS_KEY_ID'] is not a valid environment variable name"),
    ("id-env-var-is-env-var", "integration-aws-key", "consumers[0].id_env_var", "AWS_SECRET_ACCESS_KEY",
     "integration-aws-key.consumers[0].id_env_var: 'AWS_SECRET_ACCESS_KEY' is env_var too"),
    ("id-env-var-generated", "integration-aws-key", "issuer", {"kind": "generated"},
     "integration-aws-key.consumers[0].id_env_var: a generated value has no key id"),
    ("id-env-var-rest-no-id-path", "integration-aws-key", "issuer", REST_WITHOUT_IDS,
     "consumers[0].id_env_var: issuer.create has no id_path"),
    ("id-env-var-single-role", "orders-db", "issuer.roles", DELETE,
     "orders-db.consumers[0].id_env_var: the single-role procedure's key ids are '<role>@<time>'"),
    ("roles-string", "orders-db", "issuer.roles", "orders_app_a",
     "orders-db.issuer.roles: must be a list of exactly two roles, got 'orders_app_a'"),
    ("roles-three", "orders-db", "issuer.roles", ["a", "b", "c"], "issuer.roles: must be a list of exactly two roles"),
    ("roles-one", "orders-db", "issuer.roles", ["a"], "issuer.roles: must be a list of exactly two roles"),
    ("roles-twice", "orders-db", "issuer.roles", ["app", "app"], "orders-db.issuer.roles: names 'app' twice"),
    ("roles-empty-name", "orders-db", "issuer.roles", ["app", ""], "orders-db.issuer.roles[1]: '' is not a PostgreSQL role name"),
    ("roles-too-long", "orders-db", "issuer.roles", ["app", "x" * 64], "issuer.roles[1]: 'xxxx"),
    ("roles-and-role", "orders-db", "issuer.role", "orders_app",
     "orders-db.issuer.role: is set together with roles. Fix: give role for the single-role procedure or roles"),
    ("roles-in-aws-store", "orders-db", "store", {"kind": "aws_secretsmanager", "secret_id": "orders-db"},
     "orders-db.issuer.roles: alternating roles reuse their key ids"),
]


@pytest.mark.parametrize("case_id,name,path,value,expected", BAD_IDS, ids=[b[0] for b in BAD_IDS])
def test_bad_id_env_var_and_roles_name_credential_field_and_fix(case_id, name, path, value, expected):
    credentials = copy.deepcopy(IDS)
    _set(credentials[name], path, value)
    errors, _warnings = validate(credentials)
    assert any(expected in e for e in errors), "expected %r in %r" % (expected, errors)
    for error in errors:
        assert ". Fix: " in error, error


def test_single_role_still_needs_role():
    credentials = copy.deepcopy(IDS)
    del credentials["orders-db"]["issuer"]["roles"]
    del credentials["orders-db"]["consumers"][0]["id_env_var"]
    errors, _warnings = validate(credentials)
    assert len(errors) == 1 and errors[0].startswith("orders-db.issuer.role: missing or empty"), errors


def test_id_env_var_claims_its_variable():
    credentials = dict(copy.deepcopy(IDS), **copy.deepcopy({"billing-db": OTHERS["billing-db"]}))
    other = credentials["billing-db"]["consumers"][0]
    other.update(env_file="/etc/exporter/env", env_var="AWS_ACCESS_KEY_ID")
    errors, _warnings = validate(credentials)
    assert len(errors) == 2, errors  # web1 and web2
    assert errors[0].startswith("billing-db.consumers[0].env_var: AWS_ACCESS_KEY_ID in /etc/exporter/env on host web1 "
                                "is also written by integration-aws-key.consumers[0]"), errors


def test_id_env_var_elsewhere_is_an_unknown_field():
    credentials = copy.deepcopy(IDS)
    credentials["integration-aws-key"]["consumers"].append(
        {"name": "nightly", "kind": "batch", "hosts": "batch", "id_env_var": "AWS_ACCESS_KEY_ID"})
    errors, warnings = validate(credentials)
    assert errors == []
    assert [w.split(":", 1)[0] for w in warnings] == ["integration-aws-key.consumers[1].id_env_var"]
