"""Build the collection with ansible-galaxy and install it somewhere of the test's own, as an
execution environment gets it. Shared by test_execution_environment.py and test_ansible_runner.py.

The build runs on a copy of the checkout without its local state and test harness (LEFT_OUT:
dot-directories such as virtualenvs and caches, the lab, build output), not on the checkout
itself: whatever a developer has lying around stays out, and the build takes seconds.
galaxy.yml's build_ignore applies on top, as for any build."""
import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path

from tests.lab.ansible_runner import ROOT

LEFT_OUT = ("tests", "benchmarks", "extensions", "dist", "incidents", "*.tar.gz", "*.jsonl")
BIN = Path(sys.executable).parent


def galaxy_env(tmp):
    cfg = Path(tmp) / "empty-ansible.cfg"
    cfg.write_text("")
    return {"PATH": str(BIN) + ":/usr/bin:/bin", "HOME": str(tmp), "ANSIBLE_CONFIG": str(cfg)}


def build(tmp, output=None):
    """ansible-galaxy collection build of a copy of the collection's parts; returns the tarball."""
    tmp = Path(tmp)
    src = tmp / "collection-src"
    src.mkdir()
    for path in sorted(ROOT.iterdir()):
        if path.name.startswith(".") or any(fnmatch.fnmatch(path.name, pattern) for pattern in LEFT_OUT):
            continue
        if path.is_dir():
            shutil.copytree(path, src / path.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / path.name)
    output = Path(output or tmp)
    output.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(output)],
                          cwd=str(src), env=galaxy_env(tmp), capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return next(output.glob("credops-rotation-*.tar.gz"))


def install(tarball, collections_path, tmp):
    """ansible-galaxy collection install TARBALL -p COLLECTIONS_PATH."""
    proc = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", str(tarball),
                           "-p", str(collections_path)], cwd=str(tmp), env=galaxy_env(tmp),
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return Path(collections_path)
