"""env_file_value: plain values stay as they are; others are double-quoted so that systemd's
EnvironmentFile= parser reads them back exactly (tests/integration/test_env_file_values.py
proves that on a real systemd host); newline, CR and NUL are refused without showing the value."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.credops.rotation.plugins.filter.env_file import env_file_problem, env_file_value


@pytest.mark.parametrize("value, line", [
    ("sk_live_abc123", "sk_live_abc123"),
    ("AKIAEXAMPLE/+=x.y:z,w@h%1-2", "AKIAEXAMPLE/+=x.y:z,w@h%1-2"),
    ('a"b', '"a\\"b"'),
    ("a'b", '"a\'b"'),
    ("p$HOME x", '"p\\$HOME x"'),
    ("c:\\path\\n", '"c:\\\\path\\\\n"'),
    ("tick`id`", '"tick\\`id\\`"'),
    ("#comment", '"#comment"'),
    (" lead and trail ", '" lead and trail "'),
    ("tab\there", '"tab\there"'),
    ("", '""'),
    ("ünïcode", '"ünïcode"'),
])
def test_value_as_written(value, line):
    assert env_file_value(value) == line


@pytest.mark.parametrize("value, what", [("a\nb", "a newline"), ("a\rb", "a carriage return"), ("a\x00b", "a NUL byte")])
def test_what_no_env_file_can_carry_is_refused_without_the_value(value, what):
    with pytest.raises(AnsibleFilterError) as err:
        env_file_value("s3cr3t" + value, "payment-gateway-api PAYMENT_API_KEY")
    assert str(err.value) == ("env_file_value: payment-gateway-api PAYMENT_API_KEY contains %s, which a systemd "
                              "EnvironmentFile cannot carry" % what)
    assert env_file_problem("s3cr3t" + value) == what


def test_no_problem():
    assert env_file_problem("a b $c \\ \" '") == ""
