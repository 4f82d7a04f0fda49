"""The collection is loaded once in ansible-playbook's main process (#14).

Ansible forks a worker per task and host; a filter, action plugin or module the main process has
not imported is imported again by every worker (about 60 ms a task here). The callback plugin
beside the playbooks imports them when a playbook starts, so forked workers start with them;
Kubernetes code stays out (its client alone takes ~0.15 s and only Kubernetes consumers need it).
Checked in a fresh interpreter; tests/integration/test_preload.py checks a real run.
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
        from ansible_collections.credops.rotation.plugins.plugin_utils import preload
        before = set(sys.modules)
        names = preload.preload()
        assert preload.preload() is names  # once per process
        print(" ".join(m for m in sys.modules if m not in before))
    """)
    for name in ("plugins.filter.systemd_deploy", "plugins.filter.rotation", "plugins.action.in_process",
                 "plugins.action.audit_event", "plugins.modules.secret_store", "plugins.modules.issue_key",
                 "plugins.module_utils._audit", "plugins.module_utils._stores.vault_kv2"):
        assert "ansible_collections.credops.rotation." + name in loaded
    assert "hvac" in loaded and "jmespath" in loaded and "ansible.module_utils.urls" in loaded
    assert not [m for m in loaded if m.split(".")[0] == "kubernetes"]
    assert "ansible_collections.credops.rotation.plugins.modules.kubernetes_consumer" not in loaded


def test_no_play_names_a_strategy_and_the_callback_needs_no_enabling():
    # ansible-core 2.19+ deprecate the strategy plugins of collections: the playbooks name only
    # ansible.builtin.linear, on every controller play (add_host and the order of the steps need it,
    # whatever the user's default), and none on the consumer hosts' plays (they keep the user's)
    plays = 0
    for path in PLAYBOOKS:
        text = path.read_text()
        assert set(re.findall(r"(?m)^\s+strategy: (\S+)", text)) <= {"ansible.builtin.linear"}, path.name
        for match in re.finditer(r"(?m)^  hosts: (\S+)\n((?:  [^\n]*\n)*?)  tasks:", text):
            controller = match.group(1) in ("localhost", "credops_rotation_credentials")
            plays += controller
            assert ("  strategy: ansible.builtin.linear\n" in match.group(2)) == controller, (path.name, match.group(1))
    assert plays >= 10
    callback = _fresh("""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("cb", "%s")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        plugin = module.CallbackModule
        print(plugin.CALLBACK_NEEDS_ENABLED, plugin.CALLBACK_TYPE, plugin.CALLBACK_NAME)
    """ % (ROOT / "playbooks" / "callback_plugins" / "credops_rotation_preload.py"))
    assert callback == ["False", "aggregate", "credops_rotation_preload"]


def test_preload_prepares_the_default_tls_context_once():
    # loading the system's CA certificates costs ~0.05 s of CPU: once in the main process, not
    # again in every worker that makes a request (revocation, issue, each consumer's verification)
    out = _fresh("""
        import ssl
        from ansible_collections.credops.rotation.plugins.module_utils import _http
        from ansible_collections.credops.rotation.plugins.plugin_utils import preload
        assert not _http._TLS_CONTEXTS
        preload.preload()
        context = _http.tls_context(True, None)
        print(list(_http._TLS_CONTEXTS) == [(True, None)], isinstance(context, ssl.SSLContext),
              context.verify_mode == ssl.CERT_REQUIRED, context.check_hostname, context.cert_store_stats()["x509_ca"] > 0)
    """)
    assert out == ["True"] * 5
