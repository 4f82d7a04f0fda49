"""module_defaults reach this collection's modules, which all share one action plugin (routed by
action_plugin in meta/runtime.yml): the action group's defaults by FQCN and by short name, and
each module's own defaults kept to that module; and systemd_consumer's, whose action plugin is
its own (same name)."""
import json
import sys

from tests.lab.ansible_runner import run_playbook

PLAY = [
    {"name": "group defaults", "hosts": "localhost", "connection": "local", "gather_facts": False,
     "collections": ["credops.rotation"],
     "module_defaults": {"group/credops.rotation.rotation": {
         "credential": "from-group", "issuer": {"kind": "generated"}, "since": "2026-01-01T00:00:00Z"}},
     "tasks": [{"name": "by FQCN", "credops.rotation.assess_scope": {}, "register": "by_fqcn"},
               {"name": "by short name", "assess_scope": {}, "register": "by_short"}]},
    {"name": "per-module defaults", "hosts": "localhost", "connection": "local", "gather_facts": False,
     "module_defaults": {
         "credops.rotation.webhook_secret": {"action": "phase", "current_phase": "single"},
         "credops.rotation.assess_scope": {"credential": "per-module", "issuer": {"kind": "generated"},
                                           "since": "2026-01-01T00:00:00Z"}},
     "tasks": [{"name": "webhook_secret", "credops.rotation.webhook_secret": {}, "register": "webhook"},
               {"name": "assess_scope", "credops.rotation.assess_scope": {}, "register": "scope"},
               {"name": "save", "ansible.builtin.copy": {
                   "content": "{{ {'fqcn': hostvars.localhost.by_fqcn, 'short': hostvars.localhost.by_short,"
                              " 'webhook': webhook, 'scope': scope} | to_json }}",
                   "dest": "{{ out }}"}}]},
    # systemd_consumer runs on the consumer host through an action plugin of its own (same name): an entry
    # refused by the caller never reaches a host, so its verdict comes from that action plugin alone
    {"name": "systemd_consumer defaults", "hosts": "localhost", "connection": "local", "gather_facts": False,
     "collections": ["credops.rotation"],
     "module_defaults": {"credops.rotation.systemd_consumer": {"entries": [
         {"path": "/nonexistent/environment", "name": "X", "service": "x.service", "credential": "from-defaults",
          "consumer": "app", "refused": "refused by the caller"}]}},
     "tasks": [{"name": "by FQCN", "credops.rotation.systemd_consumer": {}, "register": "systemd_fqcn",
                "ignore_errors": True},
               {"name": "by short name", "systemd_consumer": {"skip": ["other"]}, "register": "systemd_short",
                "ignore_errors": True},
               {"name": "save", "ansible.builtin.copy": {
                   "content": "{{ {'fqcn': systemd_fqcn, 'short': systemd_short} | to_json }}",
                   "dest": "{{ out }}.systemd"}}]},
]


def test_group_and_per_module_defaults(tmp_path):
    playbook = tmp_path / "defaults.yml"
    playbook.write_text(json.dumps(PLAY))
    out = tmp_path / "out.json"
    proc = run_playbook(playbook, inventory="localhost,",
                        extra_vars={"ansible_python_interpreter": sys.executable, "out": str(out)})
    assert proc.returncode == 0, proc.stdout[-4000:]
    result = json.loads(out.read_text())
    for key in ("fqcn", "short"):
        assert not result[key].get("failed") and "from-group" in json.dumps(result[key]), result[key]
    assert not result["webhook"].get("failed") and result["webhook"]["current_phase"] == "single"
    assert "per-module" in json.dumps(result["scope"]) and "from-group" not in json.dumps(result["scope"])
    systemd = json.loads((tmp_path / "out.json.systemd").read_text())
    for key in ("fqcn", "short"):
        assert systemd[key]["failed"] and systemd[key]["results"] == {"from-defaults": [{
            "consumer": "app", "kind": "systemd", "failed": True, "changed": False, "error": "refused by the caller",
            "step": "Deploy | write the value in the environment file (X in /nonexistent/environment)"}]}, systemd[key]
    assert systemd["short"]["skipped_credentials"] == ["other"]
