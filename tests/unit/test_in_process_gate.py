"""The in-process path is taken only on ansible-core releases it was proven on; on any other
release (older, or newer than this collection knows) the module runs as a module process."""
import pytest

from ansible_collections.credops.rotation.plugins.plugin_utils import in_process


@pytest.mark.parametrize("version, release", [
    ("2.19.14", (2, 19)), ("2.21.5", (2, 21)), ("2.22.0.dev0", (2, 22)), ("2.17.0rc1", (2, 17)),
    ("", None), ("devel", None),
])
def test_core_release(version, release):
    assert in_process._core_release(version) == release


@pytest.mark.parametrize("version", ["2.17.14", "2.18.9", "2.22.0", "3.0.0", "devel"])
def test_unproven_releases_run_modules_as_module_processes(version):
    assert in_process._hooks(version) is None


def test_the_running_release_decides():
    proven = in_process._core_release(in_process.ANSIBLE_CORE_VERSION) in in_process.PROVEN_CORES
    assert (in_process._hooks() is not None) == proven
