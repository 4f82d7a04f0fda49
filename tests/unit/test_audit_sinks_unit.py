"""rotation_audit_sinks: bad input is refused naming the field; messages never show a URL's
path, query or credentials; the actor comes from AWX's extra vars before the environment."""
import pytest

from ansible_collections.credops.rotation.plugins.module_utils import _audit, _audit_sinks


@pytest.mark.parametrize("sinks, expected", [
    (None, []),
    ([], []),
    ([{"type": "syslog"}], []),
    ([{"type": "syslog", "address": "/run/systemd/journal/dev-log", "facility": "local3", "tag": "x"}], []),
    ([{"type": "syslog", "address": "127.0.0.1:514"}], []),
    ([{"type": "http", "url": "https://logs.example.org/in", "headers": {"A": "b"}, "timeout": 2}], []),
    ({"type": "syslog"}, ["rotation_audit_sinks: must be a list"]),
    (["syslog"], ["rotation_audit_sinks[0]: must be a mapping"]),
    ([{"type": "kafka"}], ["rotation_audit_sinks[0].type: 'kafka' is not a sink type"]),
    ([{"type": "syslog", "facility": "mail"}], ["rotation_audit_sinks[0].facility: 'mail' is not one of"]),
    ([{"type": "syslog", "address": "nowhere"}], ["rotation_audit_sinks[0].address: give a socket path"]),
    ([{"type": "syslog", "url": "https://x"}], ["rotation_audit_sinks[0].url: unknown field for a syslog sink"]),
    ([{"type": "http"}], ["rotation_audit_sinks[0].url: an http:// or https:// URL is required"]),
    ([{"type": "syslog"}, {"type": "http", "url": "ftp://x/y"}], ["rotation_audit_sinks[1].url: an http://"]),
    ([{"type": "http", "url": "http://h/", "headers": "Bearer x"}], ["rotation_audit_sinks[0].headers: must be a mapping"]),
    ([{"type": "http", "url": "http://h/", "timeout": 0}], ["rotation_audit_sinks[0].timeout: must be a positive"]),
])
def test_problems_name_the_field(sinks, expected):
    problems = _audit_sinks.problems(sinks)
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected):
        assert problem.startswith(start), problem


def test_a_sink_is_named_without_what_its_url_may_hide():
    name = _audit_sinks.describe({"type": "http", "url": "https://user:pw@logs.example.org:8443/in/tok3n?key=k3y"})
    assert name == "http sink https://logs.example.org"


def test_a_failed_sink_is_a_warning_unless_required():
    entry = _audit.make_entry("c", "issued", actor_name="a")
    dead = {"type": "http", "url": "http://127.0.0.1:9/in?token=t0ken", "timeout": 1}
    warnings, errors = _audit_sinks.deliver([dead], entry)
    assert errors == [] and len(warnings) == 1 and "t0ken" not in warnings[0] and "c/issued" in warnings[0]
    warnings, errors = _audit_sinks.deliver([dict(dead, required=True)], entry)
    assert warnings == [] and len(errors) == 1


@pytest.mark.parametrize("variables, env, expected", [
    ({"awx_user_name": "alice-awx"}, {"USER": "root", "AWX_USER_NAME": "env-user"}, "alice-awx"),
    ({"tower_user_name": "bob"}, {"USER": "root"}, "bob"),
    ({"rotation_actor": "carol", "awx_user_name": "alice-awx"}, {}, "carol"),
    ({"awx_user_name": ""}, {"AWX_USER_NAME": "env-user", "USER": "root"}, "env-user"),
    ({}, {"SUDO_USER": "dave", "USER": "root"}, "dave"),
    (None, {"USER": "root"}, "root"),
])
def test_actor_order(variables, env, expected):
    assert _audit.actor(env=env, variables=variables) == expected
