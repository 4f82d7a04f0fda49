"""ansible-lint --profile production is clean over the whole tree (.ansible-lint: only local
state is excluded, no rule is skipped).

ansible-lint pins an ansible-core of its own, so it lives in a virtualenv of its own,
.venv-lint (made by `make setup`), with antsibull-changelog. Without it these tests fail; they
never skip.
"""
import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = ROOT / ".venv-lint" / "bin" / "ansible-lint"


def test_ansible_lint_production_profile():
    assert LINT.exists(), ("%s is missing: run `make setup` (it creates .venv-lint with "
                           "ansible-lint>=26,<27 and antsibull-changelog)" % LINT)
    env = dict(os.environ, NO_COLOR="1", PATH="%s:%s" % (LINT.parent, os.environ.get("PATH", "")))
    for var in ("ANSIBLE_CONFIG", "ANSIBLE_COLLECTIONS_PATH", "VIRTUAL_ENV"):
        env.pop(var, None)      # the lint venv's own ansible-core, this checkout's ansible.cfg
    proc = subprocess.run([str(LINT), "--profile", "production", "--nocolor"], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-12000:]
    assert re.search(r"Passed: 0 failure\(s\)", out), out[-4000:]


def test_changelog_fragments_and_changelog_yaml_lint():
    tool = LINT.parent / "antsibull-changelog"
    assert tool.exists(), "%s is missing: run `make setup` (it creates .venv-lint)" % tool
    for args in (["lint"], ["lint-changelog-yaml", "changelogs/changelog.yaml"]):
        proc = subprocess.run([str(tool)] + args, cwd=str(ROOT), capture_output=True, text=True, timeout=120,
                              check=False)
        assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr
