"""RotationModule: the shared options merged with a module's own, and the one mapping of errors
to fail_json (message, step, changed; no no_log value in it)."""
import json

import pytest

from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._module import AUDIT_ARGSPEC, RotationModule, merge_options
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


AUDITED = dict(SPEC, incident=dict(type="str"), **AUDIT_ARGSPEC)


def _module(args, check_mode=False):
    with patch_module_args(dict(args, _ansible_check_mode=check_mode)):
        return RotationModule(AUDITED)


def test_audited_names_the_entry_only_when_the_task_asks_for_one():
    result = _module({"credential": "c"}).audited({"msg": "x"}, "issued", key_id="k2")
    assert result == {"msg": "x"}
    module = _module({"credential": "c", "incident": "INC-1",
                      "audit": {"previous_key_id": "k1", "details": {"why": "leak", "issuer": "mine"}}})
    result = module.audited({}, "issued", key_id="k2", details={"issuer": "rest", "fingerprint": "ab"})
    # the module's own details (what happened) win over the task's; the module's incident option fills in
    assert result["audit_entries"] == [dict(credential="c", event="issued", key_id="k2", previous_key_id="k1",
                                            incident="INC-1", details={"issuer": "rest", "fingerprint": "ab",
                                                                       "why": "leak"})]
    module = _module({"credential": "c", "incident": "INC-1", "audit": {"incident": "INC-2"}})
    assert module.audited({}, "revoked")["audit_entries"][0]["incident"] == "INC-2"


def test_audited_names_nothing_in_check_mode():
    assert _module({"credential": "c", "audit": {}}, check_mode=True).audited({}, "stored") == {}


def test_a_secret_field_in_the_audit_details_is_a_problem(capsys):
    assert _module({"credential": "c", "audit": {"details": {"step": "x"}}}).audit_problem() is None
    assert _module({"credential": "c"}).audit_problem() is None
    # the module fails with it as it starts
    with pytest.raises(SystemExit):
        _module({"credential": "c", "audit": {"details": {"Token": 1, "value": 2}}})
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] and result["msg"] == "credential 'c': audit.details must not carry secret fields: Token, value"


def test_another_modules_option_named_audit_is_no_problem():
    """systemd_consumer's own ``audit`` is a bool (record the consumers): not this option."""
    with patch_module_args({"credential": "c", "audit": True}):
        module = RotationModule(dict(credential=dict(type="str"), audit=dict(type="bool", default=False)))
    assert module.audit_problem() is None
