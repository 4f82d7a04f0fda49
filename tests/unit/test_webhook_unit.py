"""Webhook signing secrets: generate, sign, verify (constant time), the phase table, the module."""
import hashlib
import hmac
import json

import pytest
from tests.unit._module_args import patch_module_args

from ansible_collections.credops.rotation.plugins.module_utils import _webhook
from ansible_collections.credops.rotation.plugins.module_utils._webhook import (
    WebhookError, format_header, generate, parse_header, sign, signature, transition, verify)
from ansible_collections.credops.rotation.plugins.modules import webhook_secret

OLD = "whsec_old-unit-secret-AAAAAAAAAAAAAAAAAAAA"
NEW = "whsec_new-unit-secret-BBBBBBBBBBBBBBBBBBBB"
PAYLOAD = '{"type":"credops.rotation.test","id":"evt_1"}'
TS = 1700000000


def reference(secret, message):
    """An independent HMAC-SHA256 hex, straight from the standard library."""
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def fixed_now():
    return TS + 10


# --- generate -------------------------------------------------------------------------

@pytest.mark.parametrize("length, prefix", [(32, "whsec_"), (16, ""), (64, "sig_")])
def test_generate(length, prefix):
    values = {generate(length, prefix) for _index in range(20)}
    assert len(values) == 20
    for value in values:
        assert value.startswith(prefix)
        body = value[len(prefix):]
        # URL-safe base64 without padding: 4 chars per 3 bytes
        assert len(body) == -(-length * 4 // 3)
        assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_generate_refuses_weak_length():
    with pytest.raises(WebhookError):
        generate(8)


# --- sign -----------------------------------------------------------------------------

@pytest.mark.parametrize("payload_format, message", [
    ("{timestamp}.{payload}", "%d.%s" % (TS, PAYLOAD)),
    ("{payload}", PAYLOAD),
    ("v1:{timestamp}:{payload}", "v1:%d:%s" % (TS, PAYLOAD)),
])
def test_signature_matches_reference(payload_format, message):
    assert signature(NEW, PAYLOAD, TS, payload_format) == reference(NEW, message)


def test_payload_with_placeholder_text_is_signed_verbatim():
    payload = '{"note":"{timestamp}"}'
    assert signature(NEW, payload, TS) == reference(NEW, "%d.%s" % (TS, payload))


@pytest.mark.parametrize("header_format, expected", [
    ("t={timestamp},v1={signature}", "t={ts},v1={sig}"),
    ("v1={signature},t={timestamp}", "v1={sig},t={ts}"),
    ("sha256={signature}", "sha256={sig}"),
    ("{timestamp}:{signature}", "{ts}:{sig}"),
])
def test_sign_header_formats(header_format, expected):
    signed = sign(NEW, PAYLOAD, TS, header_format=header_format)
    sig = reference(NEW, "%d.%s" % (TS, PAYLOAD))
    assert signed["signature"] == sig and signed["timestamp"] == TS
    assert signed["header"] == expected.format(ts=TS, sig=sig)
    assert parse_header(signed["header"], header_format)[1] == [sig]


def test_sign_defaults_to_now():
    assert sign(NEW, PAYLOAD, now=lambda: 1234.9)["timestamp"] == 1234


def test_format_header_with_two_signatures():
    assert format_header(["aa", "bb"], TS) == "t=%d,v1=aa,v1=bb" % TS
    with pytest.raises(WebhookError):
        format_header(["aa", "bb"], TS, "{timestamp}:{signature}")


@pytest.mark.parametrize("bad", [{"header_format": "t={timestamp}"}, {"payload_format": "{timestamp}"}])
def test_formats_need_their_placeholders(bad):
    with pytest.raises(WebhookError):
        sign(NEW, PAYLOAD, TS, **bad)


@pytest.mark.parametrize("header, header_format, parsed", [
    ("t=1,v1=aa", "t={timestamp},v1={signature}", (1, ["aa"])),
    ("t=1, v1=aa, v1=bb", "t={timestamp},v1={signature}", (1, ["aa", "bb"])),
    ("v1=aa,t=1", "t={timestamp},v1={signature}", (1, ["aa"])),
    ("t=1,v0=zz,v1=aa", "t={timestamp},v1={signature}", (1, ["aa"])),
    ("v1=aa", "t={timestamp},v1={signature}", (None, ["aa"])),
    ("t=x,v1=aa", "t={timestamp},v1={signature}", (None, ["aa"])),
    ("", "t={timestamp},v1={signature}", (None, [])),
    ("sha256=ab12", "sha256={signature}", (None, ["ab12"])),
    ("12:ab12", "{timestamp}:{signature}", (12, ["ab12"])),
    ("garbage", "{timestamp}:{signature}", (None, [])),
])
def test_parse_header(header, header_format, parsed):
    assert parse_header(header, header_format) == parsed


# --- verify ---------------------------------------------------------------------------

def header_for(secret, ts=TS, payload=PAYLOAD):
    return "t=%d,v1=%s" % (ts, reference(secret, "%d.%s" % (ts, payload)))


@pytest.mark.parametrize("accepted, header, valid, matched", [
    ([NEW], header_for(NEW), True, 0),
    ([NEW, OLD], header_for(OLD), True, 1),                  # dual_accept: the old still passes
    ([NEW, OLD], header_for(NEW), True, 0),
    ([NEW], header_for(OLD), False, None),                   # complete: the old is dropped
    ([OLD], header_for(NEW).upper().replace("T=", "t=").replace("V1=", "v1="), False, None),
    ([NEW], header_for(NEW).upper().replace("T=", "t=").replace("V1=", "v1="), True, 0),   # upper-case hex
    ([NEW], "t=%d,v1=%s,v1=%s" % (TS, "0" * 64, reference(NEW, "%d.%s" % (TS, PAYLOAD))), True, 0),
    ([NEW], header_for(NEW, payload=PAYLOAD + " "), False, None),   # tampered payload
    ([NEW], "t=%d" % TS, False, None),
    ([], header_for(NEW), False, None),
    (["", NEW], header_for(NEW), True, 1),
])
def test_verify(accepted, header, valid, matched):
    res = verify(accepted, PAYLOAD, header=header, now=fixed_now)
    assert (res["valid"], res["matched"]) == (valid, matched), res["reason"]
    assert NEW not in res["reason"] and OLD not in res["reason"]


@pytest.mark.parametrize("ts, tolerance, valid", [
    (TS, 300, True),
    (TS - 300, 300, True),
    (TS - 400, 300, False),
    (TS + 400, 300, False),
    (TS - 100000, 0, True),     # 0: no replay check
])
def test_verify_tolerance(ts, tolerance, valid):
    res = verify([NEW], PAYLOAD, header=header_for(NEW, ts=ts), tolerance=tolerance,
                 now=lambda: TS)
    assert res["valid"] is valid


def test_verify_bare_signature_and_timestamp():
    sig = reference(NEW, "%d.%s" % (TS, PAYLOAD))
    assert verify([NEW], PAYLOAD, signature_value=sig, timestamp=TS, now=fixed_now)["valid"]
    assert not verify([NEW], PAYLOAD, signature_value=sig, now=fixed_now)["valid"]   # no timestamp
    gh = reference(NEW, PAYLOAD)
    assert verify([NEW], PAYLOAD, header="sha256=" + gh, header_format="sha256={signature}",
                  payload_format="{payload}", now=fixed_now)["valid"]


class CountingCompare:
    def __init__(self):
        self.calls = 0
        self.real = hmac.compare_digest

    def __call__(self, a, b):
        self.calls += 1
        return self.real(a, b)


@pytest.mark.parametrize("accepted, n_sigs, signer, calls", [
    ([NEW], 1, NEW, 1),
    ([NEW, OLD], 1, NEW, 2),      # a match on the first secret does not stop the loop
    ([NEW, OLD], 2, NEW, 4),
    ([NEW, OLD], 1, "whsec_other-secret-CCCCCCCCCCCC", 2),
])
def test_verify_compares_in_constant_time_without_early_exit(monkeypatch, accepted, n_sigs, signer, calls):
    counter = CountingCompare()
    monkeypatch.setattr(_webhook.hmac, "compare_digest", counter)
    sig = reference(signer, "%d.%s" % (TS, PAYLOAD))
    header = "t=%d,v1=%s" % (TS, sig) + (",v1=" + "f" * 64) * (n_sigs - 1)
    verify(accepted, PAYLOAD, header=header, now=fixed_now)
    assert counter.calls == calls


def test_verify_does_not_use_plain_equality(monkeypatch):
    """With compare_digest forced to 'no', nothing verifies: the result comes from it alone."""
    monkeypatch.setattr(_webhook.hmac, "compare_digest", lambda a, b: False)
    assert not verify([NEW], PAYLOAD, header=header_for(NEW), now=fixed_now)["valid"]


# --- the phase table ------------------------------------------------------------------

ALLOWED = {
    ("single", "single"), ("single", "dual_accept"),
    ("dual_accept", "dual_accept"), ("dual_accept", "complete"), ("dual_accept", "single"),
    ("complete", "complete"), ("complete", "single"), ("complete", "dual_accept"),
}


@pytest.mark.parametrize("current", _webhook.PHASES)
@pytest.mark.parametrize("target", _webhook.PHASES)
def test_transition_table(current, target):
    if (current, target) in ALLOWED:
        assert transition(current, target) == target
    else:
        with pytest.raises(WebhookError) as err:
            transition(current, target)
        assert "illegal phase transition %s -> %s" % (current, target) in str(err.value)


@pytest.mark.parametrize("current, nxt", [
    ("single", "dual_accept"), ("dual_accept", "complete"), ("complete", "single")])
def test_next_phase(current, nxt):
    assert transition(current) == nxt
    assert (current, nxt) in ALLOWED


@pytest.mark.parametrize("current, target", [("pending", None), ("single", "finished")])
def test_unknown_phases(current, target):
    with pytest.raises(WebhookError):
        transition(current, target)


# --- the module, in process -----------------------------------------------------------

def run(args, capsys, no_log=False):
    if no_log:
        args = dict(args, _ansible_no_log=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            webhook_secret.main()
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("args, expect", [
    ({"action": "phase", "current_phase": "single"},
     {"phase": "dual_accept", "receivers_accept": ["current", "previous"], "changed": False}),
    ({"action": "phase", "current_phase": "dual_accept", "phase": "complete"},
     {"phase": "complete", "receivers_accept": ["current"]}),
    ({"action": "phase", "current_phase": "dual_accept", "phase": "single"},
     {"phase": "single", "allowed": ["dual_accept", "complete", "single"]}),
    ({"action": "phase", "current_phase": "single", "phase": "complete"},
     {"failed": True}),
    ({"action": "sign", "secret": NEW, "payload": PAYLOAD, "timestamp": TS},
     {"signature": reference(NEW, "%d.%s" % (TS, PAYLOAD)), "header": header_for(NEW)}),
    ({"action": "verify", "accepted_secrets": [NEW, OLD], "payload": PAYLOAD,
      "header": header_for(OLD), "tolerance": 0},
     {"valid": True, "matched": 1, "changed": False}),
    ({"action": "verify", "accepted_secrets": [NEW], "payload": PAYLOAD,
      "header": header_for(OLD), "tolerance": 0},
     {"valid": False, "failed": True}),
    ({"action": "verify", "accepted_secrets": [NEW], "payload": PAYLOAD,
      "header": header_for(OLD), "tolerance": 0, "expect_valid": False},
     {"valid": False, "changed": False}),
    ({"action": "verify", "secret": OLD, "payload": PAYLOAD,
      "header": header_for(OLD), "tolerance": 0, "expect_valid": False},
     {"valid": True, "failed": True}),
    ({"action": "generate"}, {"failed": True}),                    # not without no_log
])
def test_module_actions(capsys, args, expect):
    out = run(args, capsys)
    for key, value in expect.items():
        assert out.get(key) == value, (key, out)
    if out.get("failed"):
        assert out["msg"]
    text = json.dumps(out)
    assert NEW not in text and OLD not in text


def test_module_generate_with_no_log(capsys):
    out = run({"action": "generate", "prefix": "whsec_", "length": 24}, capsys, no_log=True)
    assert out["secret"].startswith("whsec_") and len(out["secret"]) == 6 + 32
    assert out["secret_id"] == "sha256:" + hashlib.sha256(out["secret"].encode()).hexdigest()[:16]
    assert out["changed"] is False
