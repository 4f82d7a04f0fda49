"""RotationModule: the shared options merged with a module's own, and the one mapping of errors
to fail_json (message, step, changed; no no_log value in it)."""
import json

import pytest

from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._module import RotationModule, merge_options
from tests.unit._module_args import patch_module_args

SECRET = "planted-SECRET-value-42"
SPEC = dict(credential=dict(type="str", required=True), token=dict(type="str", no_log=True))


def test_an_option_defined_twice_is_refused():
    assert merge_options({"a": {}}, {"b": {}}, {"c": {}}) == {"a": {}, "b": {}, "c": {}}
    with pytest.raises(ValueError, match="options defined twice: b"):
        merge_options({"a": {}, "b": {}}, {"b": {}})


def _fail(capsys, work, **kwargs):
    with patch_module_args({"credential": "cred", "token": SECRET}):
        module = RotationModule(SPEC)
        with pytest.raises(SystemExit):
            module.run(work, **kwargs)
    return json.loads(capsys.readouterr().out)


def test_a_rotation_error_fails_with_its_message_step_and_changed(capsys):
    def work():
        error = RotationError("the issuer said no to " + SECRET, credential="cred", step="issue", fix="retry")
        error.changed = True
        raise error
    result = _fail(capsys, work, fields={"credential": "cred"})
    assert result["failed"] and result["changed"] is True and result["step"] == "issue"
    assert result["msg"].startswith("credential 'cred', step issue: the issuer said no to ") and "Fix: retry" in result["msg"]
    assert result["credential"] == "cred" and SECRET not in json.dumps(result)


def test_an_unexpected_error_fails_naming_the_step_only_when_asked(capsys):
    def work():
        raise KeyError(SECRET)
    result = _fail(capsys, work, credential="cred", where="step store")
    assert result["msg"].startswith("credential 'cred', step store: unexpected KeyError")
    assert SECRET not in json.dumps(result)
    with patch_module_args({"credential": "cred"}):
        with pytest.raises(KeyError):
            RotationModule(SPEC).run(work)


def test_work_that_succeeds_returns_its_value():
    with patch_module_args({"credential": "cred"}):
        assert RotationModule(SPEC).run(lambda: (True, {"x": 1})) == (True, {"x": 1})
