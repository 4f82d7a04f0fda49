"""The ansible-core matrix: the unit tests and a real-lab subset on every supported release.

    nox -s core                 # every release below, one after the other
    nox -s "core(2.21)"         # one of them

Each session makes a virtualenv on a Python that release supports, installs that release with
the collection's requirements, builds the collection with that release's ansible-galaxy and
installs it (as a user gets it: no symlink to this checkout, an empty ansible.cfg), then runs
the unit tests and the lab subset: a standard rotation on systemd hosts (its deploy is the
systemd_consumer module, one restart per service), an emergency, the due report, the
in-process/module-process parity and module_defaults through the one action plugin. The build
itself is the session's own build and install above. The lab's own tools (bao,
moto_server) come from the project's virtualenv (.venv, made by `make setup`).

`make test` runs the whole suite on the release requirements.txt resolves to (from this checkout,
with its ansible.cfg), then this matrix on every release above, that one included (installed, with
an empty ansible.cfg); `make test MATRIX="core(2.21)"` runs one of them, `MATRIX=` none.
"""
import glob
import os
import shutil
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent

# ansible-core release -> a Python it supports as a controller (pyenv has 3.11 to 3.13 here).
CORES = {
    "2.17": "3.11",
    "2.18": "3.12",
    "2.19": "3.11",
    "2.20": "3.12",
    "2.21": "3.13",
}

LAB_SUBSET = [
    "tests/integration/test_rotate.py::test_standard_rotation_end_to_end",
    "tests/integration/test_emergency.py::test_emergency_revokes_first_then_rotates",
    "tests/integration/test_check_expiry.py::test_clean_inventory_passes_with_statuses_per_credential",
    "tests/integration/test_check_expiry.py::test_overdue_fails_the_run_and_names_them",
    "tests/integration/test_check_expiry.py::test_text_report_is_printed_by_default",
    "tests/integration/test_in_process.py",
    "tests/integration/test_module_defaults.py",
    "tests/integration/test_preload.py",
]

nox.options.sessions = ["core"]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


def _interpreter(version):
    """pyenv's interpreter of that version (its shims answer only for the selected one), else PATH's."""
    root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    for path in sorted(glob.glob(os.path.join(root, "versions", version + ".*", "bin", "python" + version)), reverse=True):
        return path
    return shutil.which("python" + version) or version


@nox.session(name="core", venv_backend="venv")
@nox.parametrize(("python", "core"), [(_interpreter(py), core) for core, py in CORES.items()], ids=list(CORES))
def core(session, core):
    # the unit tests need pytest and jsonschema (the published schema is checked) besides the collection's own
    session.install("ansible-core==%s.*" % core, "-r", "requirements.txt", "pytest>=8,<10", "pytest-timeout>=2.3,<3",
                    "jsonschema>=4.18,<5")
    session.run("python", "-m", "pip", "check", silent=True)
    session.run("ansible", "--version")

    tmp = Path(session.create_tmp())
    for old in tmp.glob("credops-rotation-*.tar.gz"):
        old.unlink()
    installed = tmp / "collections"
    shutil.rmtree(installed, ignore_errors=True)
    empty_cfg = tmp / "ansible.cfg"
    empty_cfg.write_text("[defaults]\n")
    galaxy_env = {"ANSIBLE_CONFIG": str(empty_cfg)}
    session.run("ansible-galaxy", "collection", "build", "--output-path", str(tmp), str(ROOT), env=galaxy_env, silent=True)
    tarball = next(tmp.glob("credops-rotation-*.tar.gz"))
    session.run("ansible-galaxy", "collection", "install", "--force", "-p", str(installed), str(tarball),
                env=galaxy_env, silent=True)

    lab_tools = str(ROOT / ".venv" / "bin")  # bao and moto_server
    env = {"CREDOPS_TEST_INSTALLED": str(installed), "PATH": os.environ["PATH"] + os.pathsep + lab_tools}
    session.run("python", "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider", env=env)
    session.run("python", "-m", "pytest", *LAB_SUBSET, "-q", "-p", "no:cacheprovider", env=env)
