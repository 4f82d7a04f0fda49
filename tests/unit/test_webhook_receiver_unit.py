"""The lab's demo webhook receiver checks signatures with its own standard-library code: here it
accepts what the collection's signer (and the lab's independent client) sign, and refuses the
rest, for the same reasons the collection's verify gives."""
import pytest

from ansible_collections.credops.rotation.plugins.module_utils import _webhook
from tests.lab import webhook_receiver as receiver
from tests.lab import webhooks

CURRENT = "whsec_receiver-unit-current-CCCCCCCCCCCC"
NEW = "whsec_receiver-unit-new-NNNNNNNNNNNNNNNNN"
OLD = "whsec_receiver-unit-old-OOOOOOOOOOOOOOOOO"
OTHER = "whsec_receiver-unit-other-XXXXXXXXXXXXXXX"
BODY = '{"id":"evt_1","type":"lab.test","note":"caf\u00e9 {timestamp}"}'
TS = 1700000000


def now():
    return TS + 10


@pytest.fixture
def accepts(monkeypatch):
    def install(current=CURRENT, new="", old="", tolerance=300):
        monkeypatch.setattr(receiver, "SECRETS", (("new", new), ("old", old), ("current", current)))
        monkeypatch.setattr(receiver, "TOLERANCE", tolerance)
    install()
    return install


def collection_header(secrets, ts=TS, body=BODY):
    sigs = [_webhook.signature(secret, body, ts) for secret in secrets]
    return _webhook.format_header(sigs, ts)


@pytest.mark.parametrize("secrets, setup, matched", [
    ([CURRENT], {}, "current"),
    ([NEW], dict(new=NEW, old=OLD), "new"),
    ([OLD], dict(new=NEW, old=OLD), "old"),
    ([OLD, NEW], dict(new=NEW, old=OLD), "new"),  # a sender signing with both: new is checked first
    ([OTHER, CURRENT], {}, "current"),
    ([OTHER], {}, "none"),
    ([NEW], {}, "none"),
    ([CURRENT], dict(current=""), "none"),
])
def test_receiver_accepts_what_the_collection_signs(accepts, secrets, setup, matched):
    accepts(**setup)
    label, reason = receiver.check(BODY, collection_header(secrets), now=now)
    assert label == matched
    assert (reason == "ok") is (matched != "none")
    expected = _webhook.verify([value for _label, value in receiver.SECRETS], BODY,
                               header=collection_header(secrets), now=now)
    assert expected["valid"] is (matched != "none")


def test_receiver_accepts_the_lab_client(accepts):
    assert receiver.check(BODY, webhooks.sign(CURRENT, BODY))[0] == "current"
    assert receiver.check(BODY, webhooks.sign(OTHER, BODY))[0] == "none"


@pytest.mark.parametrize("header, matched, reason", [
    (None, "none", "no signature found"),
    ("", "none", "no signature found"),
    ("t=%d" % TS, "none", "no signature found"),
    ("v1={sig}", "none", "no timestamp"),
    ("t=soon,v1={sig}", "none", "no timestamp"),
    ("t=%d,v1={sig}" % (TS - 400), "none", "outside the tolerance of 300s"),
    ("t=%d,v1={sig}" % (TS + 400), "none", "outside the tolerance of 300s"),
    ("v1={sig}, t=%d" % TS, "current", "ok"),
    ("t=%d,v0=deadbeef,junk,v1={SIG}" % TS, "current", "ok"),
    ("t=%d,v1={sig}" % (TS + 1), "none", "matches none of the 1 accepted secret(s)"),
    ("t=%d,v1={sig}0" % TS, "none", "matches none"),
    ("t=%d,v1=caf\u00e9" % TS, "none", "matches none"),
])
def test_receiver_refusals(accepts, header, matched, reason):
    if header is not None:
        sig = _webhook.signature(CURRENT, BODY, TS)
        header = header.replace("{sig}", sig).replace("{SIG}", sig.upper())
    label, why = receiver.check(BODY, header, now=now)
    assert label == matched and reason in why
    if matched == "none":  # the delivery log gives the reason the collection's verify gives
        assert why == _webhook.verify([CURRENT], BODY, header=header, now=now)["reason"]
    assert CURRENT not in why


def test_receiver_tolerance_zero_accepts_any_age(accepts):
    accepts(tolerance=0)
    assert receiver.check(BODY, collection_header([CURRENT], ts=1000), now=now)[0] == "current"


def test_receiver_body_must_match(accepts):
    assert receiver.check(BODY + " ", collection_header([CURRENT]), now=now)[0] == "none"


def test_receiver_does_not_use_the_collection_code():
    source = open(receiver.__file__).read()
    assert "_webhook" not in source and "ansible_collections" not in source
