"""emergency.yml on bad input: one local check before the revocation stops the run with a
message naming the credential and the field, and nothing after it runs. No service is needed:
the inventory's URLs point at a closed local port, which nothing may reach."""
import json

import pytest

from tests.lab.ansible_runner import run_playbook

CLOSED = "http://127.0.0.1:9"
REVOKE_TASK = "Emergency | REVOKE the compromised value now"


def _credential(**issuer_extra):
    return {
        "type": "api_key", "rotation_contact": "payments-team@example.org",
        "issuer": dict({"kind": "rest", "base_url": CLOSED, "auth": {"type": "bearer", "token": "t"},
                        "create": {"path": "/v1/keys", "secret_path": "api_key", "id_path": "id"},
                        "revoke": {"method": "DELETE", "path": "/v1/keys/{id}"}}, **issuer_extra),
        "store": {"kind": "vault_kv2", "url": CLOSED, "mount": "secret", "path": "x/api", "field": "api_key"},
        "consumers": [{"name": "web-app", "kind": "systemd", "hosts": "web", "env_file": "/etc/app/env",
                       "env_var": "API_KEY", "service": "app.service", "verify": {"url": CLOSED + "/health"}}],
    }


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("emergency-input") / "inventory.json"
    path.write_text(json.dumps({"all": {
        "children": {"web": {"hosts": {"web1": {"ansible_host": "127.0.0.9"}}}},
        "vars": {"rotation_credentials": {"api": _credential(), "broken": _credential(bogus_field=1)}}}}))
    return path


@pytest.mark.parametrize("extra, expected", [
    ({"credential": "api"},
     "emergency: give -e credential=NAME (one of: api, broken) and -e incident=INC-..."),
    ({"credential": "nope", "incident": "INC-1"},
     "emergency: give -e credential=NAME (one of: api, broken)"),
    ({"credential": "api", "incident": "INC 1; rm"},
     "emergency: give -e credential=NAME"),
    ({"credential": "broken", "incident": "INC-1"},
     "preflight: 1 problem(s):\n  - broken.issuer.bogus_field: unknown field, the modules refuse it."),
    # the deploy role's settings: its argument spec is left out of the deploy play, so they are checked here
    ({"credential": "api", "incident": "INC-1", "deploy_service_timeout": "soon", "rotation_verify_deadline": 1.5},
     "preflight: 2 problem(s):\n  - deploy_service_timeout must be a whole number of seconds, got: soon\n"
     "  - rotation_verify_deadline must be a whole number of seconds, got: 1.5"),
])
def test_bad_input_stops_before_the_revocation(inventory, extra, expected):
    proc = run_playbook("playbooks/emergency.yml", inventory=inventory, extra_vars=extra)
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert expected in proc.stdout + proc.stderr, (proc.stdout + proc.stderr)[-3000:]
    assert REVOKE_TASK not in proc.stdout  # the run never reached the first network step


BAD_SINKS = [{"type": "syslog"}, {"type": "http", "url": "logs.example.org/in"}]
SINK_PROBLEM = "rotation_audit_sinks[1].url: an http:// or https:// URL is required"


@pytest.mark.parametrize("playbook, extra", [
    ("playbooks/emergency.yml", {"credential": "api", "incident": "INC-1"}),
    ("playbooks/rotate.yml", {"credentials": ["api"], "force": True}),
    ("playbooks/rollback.yml", {"credential": "api"}),
])
def test_a_bad_audit_sink_stops_every_run_before_anything_changes(inventory, playbook, extra):
    proc = run_playbook(playbook, inventory=inventory, extra_vars=dict(extra, rotation_audit_sinks=BAD_SINKS))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-3000:]
    assert SINK_PROBLEM in output, output[-3000:]
    assert REVOKE_TASK not in proc.stdout and "Issue | create a new value" not in proc.stdout
