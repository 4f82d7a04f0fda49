"""A collection playbook loads the collection once before the workers fork, with no configuration
(the callback plugin beside the playbooks), and no ansible-core release warns about how: no strategy
plugin of a collection, which ansible-core 2.19 and later deprecate. Runs in every ansible-core of
the nox matrix, with the collection as ansible-galaxy installs it. No service is needed."""
import json

import pytest

from tests.lab.ansible_runner import run_playbook

PRELOADED = "modules preloaded before the workers fork"


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("preload") / "inventory.json"
    path.write_text(json.dumps({"all": {"vars": {"rotation_credentials": {}}}}))
    return path


@pytest.mark.parametrize("preload", ["1", "0"])
def test_a_playbook_preloads_the_collection_without_a_deprecation(inventory, preload):
    proc = run_playbook("playbooks/check_expiry.yml", inventory=inventory, verbosity=3,
                        env={"CREDOPS_ROTATION_PRELOAD": preload})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "0 credential(s): 0 ok" in output
    assert (PRELOADED in output) == (preload == "1"), output[-3000:]
    assert "strategy plugins not included" not in output and "DEPRECATION" not in output.replace(
        "CryptographyDeprecationWarning", ""), output[-3000:]
