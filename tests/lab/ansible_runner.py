"""Run ansible-playbook / ansible ad-hoc against the collection from the checkout.

Used by the integration tests, the demo and the benchmarks. Output is captured in full so
tests can search every byte of it for planted secret values.
"""
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / ".collections"
# Set by the nox matrix (noxfile.py): a collections path holding the collection as users get it
# (ansible-galaxy build + install). Playbooks then run from that copy, by their collection names,
# with an empty ansible.cfg: none of this checkout's settings help them.
INSTALLED = os.environ.get("CREDOPS_TEST_INSTALLED")


def _empty_config():
    path = Path(tempfile.gettempdir()) / "credops-empty-ansible.cfg"
    if not path.exists():
        path.write_text("[defaults]\n")
    return str(path)


def ansible_env(extra=None):
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    env["ANSIBLE_COLLECTIONS_PATH"] = INSTALLED or str(COLLECTIONS)
    env["ANSIBLE_CONFIG"] = _empty_config() if INSTALLED else str(ROOT / "ansible.cfg")
    env["ANSIBLE_HOST_KEY_CHECKING"] = "False"
    env["ANSIBLE_RETRY_FILES_ENABLED"] = "False"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_PYTHON_INTERPRETER"] = "auto_silent"
    env.setdefault("ANSIBLE_LOCAL_TEMP", str(Path(tempfile.gettempdir()) / "credops-ansible-local"))
    if extra:
        env.update({k: str(v) for k, v in extra.items()})
    return env


def run_playbook(playbook, inventory=None, extra_vars=None, tags=None, check=False,
                 verbosity=0, env=None, timeout=600, cwd=None, diff=False, limit=None,
                 skip_tags=None, list_tasks=False):
    """ansible-playbook PLAYBOOK; playbook is a path or a ``credops.rotation.NAME``."""
    if INSTALLED and str(playbook).startswith("playbooks/"):
        playbook = "credops.rotation." + Path(str(playbook)).stem
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), str(playbook)]
    if inventory:
        cmd += ["-i", str(inventory)]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    if tags:
        cmd += ["--tags", ",".join(tags) if isinstance(tags, (list, tuple)) else tags]
    if skip_tags:
        cmd += ["--skip-tags", ",".join(skip_tags) if isinstance(skip_tags, (list, tuple)) else skip_tags]
    if list_tasks:
        cmd.append("--list-tasks")
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if limit:
        cmd += ["--limit", limit]
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    return subprocess.run(cmd, capture_output=True, text=True, env=ansible_env(env),
                          timeout=timeout, cwd=cwd or str(ROOT), check=False)


def run_module(module, args, check=False, diff=False, env=None, timeout=300, verbosity=0, extra_vars=None,
               task=None):
    """Run one module on localhost through a tiny playbook; returns (result_dict, completed).

    The result is read from a JSON file written by the playbook, not from stdout, so the
    caller also gets the full stdout/stderr to search for secrets.
    """
    with tempfile.TemporaryDirectory(prefix="credops-mod-") as tmp:
        out = Path(tmp) / "result.json"
        play = [{
            "hosts": "localhost", "gather_facts": False, "connection": "local",
            "tasks": [
                {"name": "Run " + module, module: args, "register": "r",
                 "ignore_errors": True, "check_mode": bool(check), "diff": bool(diff), **(task or {})},
                {"name": "Save", "ansible.builtin.copy": {
                    "content": "{{ r | to_json }}", "dest": str(out)},
                 "check_mode": False, "no_log": True, "delegate_to": "localhost"},
            ],
        }]
        pb = Path(tmp) / "play.yml"
        pb.write_text(json.dumps(play))
        proc = run_playbook(pb, inventory="localhost,", env=env, timeout=timeout,
                            verbosity=verbosity,
                            extra_vars=dict(extra_vars or {}, ansible_python_interpreter=sys.executable))
        result = json.loads(out.read_text()) if out.exists() else None
        return result, proc
