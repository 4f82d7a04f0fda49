"""The controller strategy loads the collection once in the main process (#14).

Ansible forks a worker per task and host; a filter, action plugin or module the main process has
not imported is imported again by every worker (about 60 ms a task here). The strategy imports
them before the play, so forked workers start with them; Kubernetes code stays out (its client
alone takes ~0.15 s and only Kubernetes consumers need it). Checked in a fresh interpreter.
"""
import re
from pathlib import Path
from tests.unit._fresh import fresh

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOKS = sorted((ROOT / "playbooks").glob("*.yml"))


def _fresh(code):
    return fresh(code).split()


def test_preload_imports_the_collection_plugins_and_no_kubernetes_client():
    loaded = _fresh("""
        import sys
        from ansible_collections.credops.rotation.plugins.strategy import controller
        before = set(sys.modules)
        names = controller.preload()
        assert controller.preload() is names  # once per process
        print(" ".join(m for m in sys.modules if m not in before))
    """)
    for name in ("plugins.filter.systemd_deploy", "plugins.filter.rotation", "plugins.action.in_process",
                 "plugins.action.audit_event", "plugins.modules.secret_store", "plugins.modules.issue_key",
                 "plugins.module_utils._audit", "plugins.module_utils._stores.vault_kv2"):
        assert "ansible_collections.credops.rotation." + name in loaded
    assert "hvac" in loaded and "jmespath" in loaded
    assert not [m for m in loaded if m.split(".")[0] == "kubernetes"]
    assert "ansible_collections.credops.rotation.plugins.modules.kubernetes_consumer" not in loaded


def test_every_controller_play_uses_the_strategy():
    plays = 0
    for path in PLAYBOOKS:
        for match in re.finditer(r"(?m)^  hosts: (\S+)\n((?:  [^\n]*\n)*?)  tasks:", path.read_text()):
            if match.group(1) in ("localhost", "credops_rotation_credentials"):
                plays += 1
                assert "  strategy: credops.rotation.controller\n" in match.group(2), (path.name, match.group(1))
            else:
                assert "strategy:" not in match.group(2), "%s: consumer plays keep the user's strategy" % path.name
    assert plays >= 10
