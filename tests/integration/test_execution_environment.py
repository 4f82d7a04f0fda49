"""The execution environment definition, checked offline with the real ansible-builder.

No image is built here (no Docker or podman on these machines): `ansible-builder create` writes
the build context (Containerfile, _build/...) from execution-environment.yml, which is what
`ansible-builder build` would hand to podman; the test reads that context. `ansible-builder
introspect` on the installed collection reads meta/execution-environment.yml, as it does inside
the image build (the builder stage of the Containerfile runs the same introspection).
"""
import json
import re
import shutil
import subprocess
import tarfile

import pytest
import yaml
from bindep.depends import Depends
from packaging.requirements import Requirement

from tests.integration import _galaxy
from tests.lab.ansible_runner import ROOT

EE_FILES = ["execution-environment.yml", "requirements.yml", "requirements.txt", "bindep.txt"]
LIBRARIES = {"hvac", "boto3", "kubernetes", "psycopg", "jmespath", "cryptography", "requests"}
VERSION = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]


def _requirement_names(lines):
    names = set()
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            names.add(Requirement(line).name.lower())
    return names


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The EE files beside dist/credops-rotation-<version>.tar.gz, as the README's two commands
    expect them (ansible-galaxy collection build --output-path dist/; ansible-builder ...)."""
    tmp = tmp_path_factory.mktemp("ee")
    src = tmp / "checkout"
    src.mkdir()
    for name in EE_FILES:
        shutil.copy2(ROOT / name, src / name)
    tarball = _galaxy.build(tmp, output=src / "dist")
    return type("Built", (), dict(tmp=tmp, src=src, tarball=tarball))


@pytest.fixture(scope="module")
def context(built):
    ctx = built.tmp / "context"
    proc = subprocess.run([str(_galaxy.BIN / "ansible-builder"), "create", "-f", "execution-environment.yml",
                           "-c", str(ctx), "--output-filename", "Containerfile"],
                          cwd=str(built.src), capture_output=True, text=True, timeout=120, check=False,
                          env=_galaxy.galaxy_env(built.tmp))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return ctx


def test_definition_is_schema_v3():
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert ee["version"] == 3
    assert ee["images"]["base_image"]["name"].startswith(("quay.io/ansible/awx-ee:",
                                                          "ghcr.io/ansible-community/community-ee-base:"))
    deps = ee["dependencies"]
    assert (deps["galaxy"], deps["python"], deps["system"]) == ("requirements.yml", "requirements.txt", "bindep.txt")
    meta = yaml.safe_load((ROOT / "meta" / "execution-environment.yml").read_text())
    assert meta == {"version": 1, "dependencies": {"python": "requirements.txt", "system": "bindep.txt"}}


def test_create_writes_the_build_context(built, context):
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/ansible/awx-ee:' in containerfile
    assert re.search(r'ARG ANSIBLE_INSTALL_REFS=".*ansible-core>=2\.19,<2\.20.*ansible-runner>=2\.4,<3.*"',
                     containerfile)
    # the galaxy stage installs the collection, the builder stage introspects it with the user files
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    assert "COPY _build /build" in containerfile and "WORKDIR /build" in containerfile
    assert "introspect.py introspect --user-pip=requirements.txt --user-bindep=bindep.txt" in containerfile
    assert "/output/scripts/install-from-bindep" in containerfile
    # Python libraries
    build = context / "_build"
    names = _requirement_names((build / "requirements.txt").read_text().splitlines())
    assert LIBRARIES <= names
    assert (build / "requirements.txt").read_text() == (ROOT / "requirements.txt").read_text()
    # system packages, per platform (parsed by bindep itself)
    bindep = Depends((build / "bindep.txt").read_text())
    rpm = {rule[0] for rule in bindep.active_rules(["platform:rpm"])}
    dpkg = {rule[0] for rule in bindep.active_rules(["platform:dpkg"])}
    assert {"libpq", "openssh-clients", "ca-certificates"} <= rpm and "libpq5" not in rpm
    assert {"libpq5", "openssh-client", "ca-certificates"} <= dpkg and "libpq" not in dpkg
    # the collection itself: requirements.yml names the tarball copied into the context, at the
    # path the galaxy stage sees it (/build is _build)
    reqs = yaml.safe_load((build / "requirements.yml").read_text())
    assert reqs["collections"] == [{"name": "/build/collections/credops-rotation-%s.tar.gz" % VERSION,
                                    "type": "file"}]
    copied = build / "collections" / ("credops-rotation-%s.tar.gz" % VERSION)
    assert copied.read_bytes() == built.tarball.read_bytes()
    with tarfile.open(copied) as tar:
        manifest = json.load(tar.extractfile("MANIFEST.json"))
        names = set(tar.getnames())
    assert (manifest["collection_info"]["namespace"], manifest["collection_info"]["name"],
            manifest["collection_info"]["version"]) == ("credops", "rotation", VERSION)
    assert {"meta/execution-environment.yml", "requirements.txt", "bindep.txt"} <= names


def test_no_other_collection_is_used():
    """requirements.yml lists no collection but this one: the playbooks and roles use only
    ansible.builtin and credops.rotation (task keywords, roles, filters, lookups, tests by FQCN)."""
    uses = [
        re.compile(r"^\s*(?:-\s+)?([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*:"),         # a task's module
        re.compile(r"\b(?:name|role):\s+([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*\s*$"),  # a role
        re.compile(r"\|\s*([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*"),                    # a filter
        re.compile(r"\b(?:is|is not)\s+([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*"),       # a test
        re.compile(r"(?:lookup|query)\(\s*'([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*'"),  # a lookup
    ]
    used = set()
    files = list((ROOT / "playbooks").glob("*.yml")) + list((ROOT / "roles").rglob("*.yml"))
    for path in files:
        for line in path.read_text().splitlines():
            for pattern in uses:
                used.update(pattern.findall(line))
    assert "credops.rotation" in used and "ansible.builtin" in used
    assert used == {"ansible.builtin", "credops.rotation"}, sorted(used)
    reqs = yaml.safe_load((ROOT / "requirements.yml").read_text())
    assert [c["name"].rsplit("/", 1)[-1] for c in reqs["collections"]] == ["credops-rotation-%s.tar.gz" % VERSION]


def test_introspect_reads_the_installed_collection(built):
    collections = _galaxy.install(built.tarball, built.tmp / "installed", built.tmp)
    proc = subprocess.run([str(_galaxy.BIN / "ansible-builder"), "introspect", "--sanitize", str(collections)],
                          capture_output=True, text=True, timeout=120, check=False, env=_galaxy.galaxy_env(built.tmp))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = yaml.safe_load(proc.stdout.split("---", 1)[1])
    python = [line for line in data["python"] if line.endswith("# from collection credops.rotation")]
    system = [line for line in data["system"] if line.endswith("# from collection credops.rotation")]
    assert python == data["python"] and system == data["system"]
    assert _requirement_names(python) == LIBRARIES   # ansible-core is left to the EE's own install
    assert any(line.startswith("libpq [platform:rpm]") for line in system)
    assert any(line.startswith("libpq5 [platform:dpkg]") for line in system)
