"""The collection builds with ansible-galaxy, installs, and its playbooks resolve as
credops.rotation.<name> from the installed copy (not from this checkout)."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests.lab.ansible_runner import ROOT

PLAYBOOKS = ["rotate", "emergency", "rollback", "webhook_rotate", "check_expiry", "discover_consumers"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("galaxy")
    cfg = tmp / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "HOME": str(tmp),
           "ANSIBLE_CONFIG": str(cfg), "ANSIBLE_COLLECTIONS_PATH": str(tmp / "installed")}
    galaxy = str(Path(sys.executable).parent / "ansible-galaxy")
    build = subprocess.run([galaxy, "collection", "build", "--output-path", str(tmp)], cwd=str(ROOT),
                           env=env, capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    tarball = next(tmp.glob("credops-rotation-*.tar.gz"))
    inst = subprocess.run([galaxy, "collection", "install", "--force", str(tarball), "-p", str(tmp / "installed")],
                          cwd=str(tmp), env=env, capture_output=True, text=True, timeout=300, check=False)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    return tmp, env, tarball


def test_build_leaves_out_local_state(installed):
    _tmp, _env, tarball = installed
    names = subprocess.run(["tar", "tzf", str(tarball)], capture_output=True, text=True, check=True).stdout.split()
    assert "galaxy.yml" not in names and "MANIFEST.json" in names
    assert not [n for n in names if n.startswith((".venv", ".collections", ".lab", ".ci"))]
    assert "playbooks/rotate.yml" in names and "meta/runtime.yml" in names


def test_build_ships_what_users_need_and_not_the_lab(installed):
    """The license, the changelog and the metadata ship; the lab, the benchmarks and the
    development tools (and what needs the lab to work) stay in the checkout."""
    _tmp, _env, tarball = installed
    names = set(subprocess.run(["tar", "tzf", str(tarball)], capture_output=True, text=True,
                               check=True).stdout.split())
    wanted = ["LICENSE", "CHANGELOG.rst", "changelogs/changelog.yaml", "meta/runtime.yml", "README.md",
              "inventories/example/hosts.yml", "inventories/example/group_vars/all/credentials.yml"]
    if (ROOT / "meta" / "execution-environment.yml").exists():
        wanted.append("meta/execution-environment.yml")
    assert [name for name in wanted if name not in names] == []
    left_out = ("tests/lab/", "tests/integration/", "benchmarks/", "scripts/", "inventories/demo/",
                "extensions/molecule/", ".venv-lint/", ".ansible/", "tests/output/")
    assert sorted(n for n in names if n.startswith(left_out) or n.rstrip("/") + "/" in left_out) == []
    assert not {"Makefile", ".gitignore", ".ansible-lint"} & names
    assert "GNU GENERAL PUBLIC LICENSE" in (ROOT / "LICENSE").read_text()[:200]


@pytest.mark.parametrize("playbook", PLAYBOOKS)
def test_playbook_runs_by_its_collection_name(installed, playbook):
    tmp, env, _tarball = installed
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "credops.rotation." + playbook,
                           "--syntax-check", "-i", "localhost,"], cwd=str(tmp), env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(tmp / "installed" / "ansible_collections" / "credops" / "rotation" / "playbooks") in proc.stdout
