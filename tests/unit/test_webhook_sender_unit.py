"""The webhook sender's API, the receiver probes and the delivery-log judgement, against small
in-process HTTP servers; signatures are checked with the standard library's hmac."""
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tests.unit._module_args import patch_module_args

from ansible_collections.credops.rotation.plugins.module_utils import _sender
from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.modules import webhook_sender

OLD = "whsec_old-unit-secret-AAAAAAAAAAAAAAAAAAAA"
NEW = "whsec_new-unit-secret-BBBBBBBBBBBBBBBBBBBB"
TOKEN = "sender-admin-token-CCCCCCCC"


class Fake(object):
    """A sender API and a receiver in one server: records requests, answers as told."""

    def __init__(self):
        self.requests = []
        self.status = {}          # (method, path) -> status
        self.accept = [OLD]       # secrets the receiver accepts
        self.deliveries = []      # the receiver's log

    def handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body=None):
                raw = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                fake.requests.append({"method": method, "path": self.path, "body": body,
                                      "headers": dict(self.headers)})
                if self.path == "/webhook":
                    header = self.headers.get("X-Webhook-Signature", "")
                    items = dict(i.split("=", 1) for i in header.split(",") if "=" in i)
                    ok = any(hmac.compare_digest(
                        hmac.new(s.encode(), ("%s.%s" % (items.get("t"), body)).encode(),
                                 hashlib.sha256).hexdigest(), items.get("v1", "")) for s in fake.accept)
                    return self._reply(200 if ok else 401, {"accepted": ok})
                if self.path == "/deliveries":
                    return self._reply(200, {"deliveries": [{"matched": m} for m in fake.deliveries]})
                status = fake.status.get((method, self.path), 200)
                body = {"delivered": status == 200, "status": 200, "echo": NEW} if self.path.endswith("/test") else {}
                return self._reply(status, body)

            def do_PATCH(self):
                self._handle("PATCH")

            def do_POST(self):
                self._handle("POST")

            def do_PUT(self):
                self._handle("PUT")

            def do_GET(self):
                self._handle("GET")
        return Handler


@pytest.fixture
def fake():
    f = Fake()
    srv = ThreadingHTTPServer(("127.0.0.1", 0), f.handler())
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    f.url = "http://127.0.0.1:%d" % srv.server_address[1]
    yield f
    srv.shutdown()
    srv.server_close()


def sender_block(url, **over):
    block = {"base_url": url, "auth": {"type": "bearer", "token": TOKEN}, "webhook_id": ["we_1", "we 2"],
             "switch": {"body": {"secret": "{secret}", "note": "rotated {id}"}},
             "test": {"json": {"delivered": True}}, "retries": 0, "timeout": 5}
    block.update(over)
    return block


# --- the sender block --------------------------------------------------------------------

def test_defaults_are_filled_in():
    cfg = _sender.validate_sender_config(sender_block("https://s.example"), "c")
    assert cfg["switch"]["method"] == "PATCH" and cfg["switch"]["path"] == "/v1/webhooks/{id}"
    assert cfg["test"]["method"] == "POST" and cfg["test"]["path"] == "/v1/webhooks/{id}/test"
    assert cfg["signature"] == {"header": "X-Webhook-Signature", "format": "t={timestamp},v1={signature}",
                                "payload_format": "{timestamp}.{payload}"}
    assert cfg["webhook_ids"] == ["we_1", "we 2"]


@pytest.mark.parametrize("over, problem", [
    ({"switch": {"body": {"secret": "fixed"}}}, "must carry the new secret"),
    ({"switch": {"path": "/v1/{hook}", "body": {"s": "{secret}"}}}, "sender.switch.path uses {hook}"),
    ({"switch": {"body": {"s": "{secret}"}, "form": {"s": "{secret}"}}}, "both body and form"),
    ({"webhook_id": []}, "webhook_id must not be an empty list"),
    ({"webhook_id": [True]}, "webhook_id must be an id"),
    ({"base_url": "sender.example"}, "must start with http:// or https://"),
    ({"signature": {"format": "sha256={hmac}"}}, "sender.signature.format must contain {signature}"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_sender_blocks_fail_in_preflight(over, problem):
    with pytest.raises(RotationError) as err:
        _sender.validate_sender_config(sender_block("https://s.example", **over), "orders")
    assert problem in str(err.value) and err.value.step == "preflight"
    assert TOKEN not in str(err.value)


@pytest.mark.parametrize("auth, header", [
    ({"type": "bearer", "token": TOKEN}, {"Authorization": "Bearer " + TOKEN}),
    ({"type": "basic", "username": "ops", "password": "pw"}, {"Authorization": "Basic b3BzOnB3"}),
    ({"type": "header", "name": "X-Admin-Key", "value": TOKEN}, {"X-Admin-Key": TOKEN}),
])
def test_auth_headers(auth, header):
    assert _sender.auth_headers(auth)[0] == header


def test_fill_and_carries():
    body = {"webhook": {"secret": "{secret}", "tags": ["{id}", 3]}}
    assert _sender.fill(body, {"secret": "S", "id": "I"}) == {"webhook": {"secret": "S", "tags": ["I", 3]}}
    assert _sender.carries(body, "secret") and not _sender.carries({"a": 1}, "secret")


# --- switch and test -----------------------------------------------------------------------

def test_switch_sets_the_secret_on_every_webhook(fake):
    sender = _sender.Sender(sender_block(fake.url), "orders")
    assert sender.switch(NEW) == [{"id": "we_1", "status": 200}, {"id": "we 2", "status": 200}]
    patches = [r for r in fake.requests if r["method"] == "PATCH"]
    assert [r["path"] for r in patches] == ["/v1/webhooks/we_1", "/v1/webhooks/we%202"]
    assert json.loads(patches[1]["body"]) == {"secret": NEW, "note": "rotated we 2"}
    assert patches[0]["headers"]["Authorization"] == "Bearer " + TOKEN


def test_switch_in_check_mode_sends_nothing(fake):
    assert _sender.Sender(sender_block(fake.url), "orders").switch(NEW, check_mode=True)[0]["status"] is None
    assert fake.requests == []


@pytest.mark.parametrize("status, fix", [(401, "check sender.auth"), (404, "sender.webhook_id"),
                                         (422, "the sender rejected the request")])
def test_a_refused_switch_names_the_webhook_and_what_was_switched(fake, status, fix):
    fake.status[("PATCH", "/v1/webhooks/we%202")] = status
    with pytest.raises(RotationError) as err:
        _sender.Sender(sender_block(fake.url), "orders").switch(NEW)
    text = str(err.value)
    assert "HTTP %d" % status in text and fix in text and err.value.step == "sender_switch"
    assert "Webhook(s) we_1 were already switched to the new secret; we 2 not." in text
    assert NEW not in text and TOKEN not in text


def test_an_unreachable_sender_fails_clearly():
    with pytest.raises(RotationError) as err:
        _sender.Sender(sender_block("http://127.0.0.1:9"), "orders", sleep=lambda s: None).switch(NEW)
    assert "could not reach the webhook sender at http://127.0.0.1:9" in str(err.value)
    assert NEW not in str(err.value)


def test_test_delivery_checks_the_answer_and_redacts(fake):
    sender = _sender.Sender(sender_block(fake.url, test={"json": {"delivered": True, "echo": "x"}}), "orders")
    with pytest.raises(RotationError) as err:
        sender.test(hide=[NEW])
    assert 'echo: expected "x", got "********"' in str(err.value) and NEW not in str(err.value)
    ok = _sender.Sender(sender_block(fake.url), "orders").test()
    assert [(r["id"], r["status"]) for r in ok] == [("we_1", 200), ("we 2", 200)]
    fake.status[("POST", "/v1/webhooks/we_1/test")] = 502
    with pytest.raises(RotationError, match="HTTP 502, expected 2xx"):
        _sender.Sender(sender_block(fake.url, retries=0), "orders", sleep=lambda s: None).test()


# --- receivers ------------------------------------------------------------------------------

@pytest.mark.parametrize("accept, secret, expect, ok", [
    ([OLD], OLD, "accepted", True),
    ([OLD, NEW], NEW, "accepted", True),
    ([OLD], NEW, "accepted", False),
    ([NEW], OLD, "rejected", True),
    ([NEW, OLD], OLD, "rejected", False),
])
def test_deliver_signs_what_an_independent_receiver_checks(fake, accept, secret, expect, ok):
    fake.accept = accept

    def call():
        return _sender.deliver(fake.url + "/webhook", secret, credential="orders", consumer="rx@h1",
                               probe="new" if secret == NEW else "old", expect=expect, deadline=0,
                               retries=0)
    if ok:
        assert call()["status"] in (200, 401)
        return
    with pytest.raises(RotationError) as err:
        call()
    text = str(err.value)
    assert ("did not accept" if expect == "accepted" else "still accepts") in text and "rx@h1" in text
    assert OLD not in text and NEW not in text


def test_deliver_retries_until_the_receiver_answers():
    clock = {"t": 0.0}
    with pytest.raises(RotationError) as err:
        _sender.deliver("http://127.0.0.1:9/webhook", NEW, deadline=3, interval=1, retries=0,
                        clock=lambda: clock["t"], sleep=lambda s: clock.__setitem__("t", clock["t"] + s))
    assert "no answer" in str(err.value) and "after 4 attempt(s)" in str(err.value)


def test_read_deliveries(fake):
    fake.deliveries = ["old", "new", "weird", "none"]
    assert _sender.read_deliveries(fake.url + "/deliveries") == ["old", "new", "unknown", "none"]
    with pytest.raises(RotationError, match="has no list at 'items'"):
        _sender.read_deliveries(fake.url + "/deliveries", list_path="items")


@pytest.mark.parametrize("logs, problems", [
    ([{"name": "a", "labels": ["old", "old", "new"], "skip": 2}], []),
    ([{"name": "a", "labels": ["old"], "skip": 1}, {"name": "b", "labels": ["new"], "skip": 0}], []),
    ([{"name": "a", "labels": ["old", "none"], "skip": 1}], ["no delivery since the switch matched the new secret"]),
    ([{"name": "a", "labels": ["new", "old"], "skip": 0}, {"name": "b", "labels": ["old"], "skip": 0}],
     ["2 delivery(ies) since the switch still matched the old secret: a (1), b (1)"]),
])
def test_judge_deliveries(logs, problems):
    found, counts, _per = _sender.judge_deliveries(logs, "new", ["old"])
    assert len(found) == len(problems) and all(p in f for p, f in zip(problems, found)), found


# --- the module, in process -----------------------------------------------------------------

def run(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            webhook_sender.main()
    return json.loads(capsys.readouterr().out)


def test_module_switch_and_deliveries(fake, capsys):
    out = run({"action": "switch", "credential": "orders", "sender": sender_block(fake.url), "secret": NEW}, capsys)
    assert out["changed"] is True and out["webhook_ids"] == ["we_1", "we 2"]
    assert NEW not in json.dumps(out) and TOKEN not in json.dumps(out)
    fake.deliveries = ["old", "new"]
    out = run({"action": "deliveries", "credential": "orders",
               "receivers": [{"name": "rx@h1", "url": fake.url + "/deliveries"}],
               "since": [{"name": "rx@h1", "count": 1}], "require": "new", "forbid": ["old"]}, capsys)
    assert out["counts"]["new"] == 1 and out["receivers"][0]["new_entries"] == 1
    out = run({"action": "deliveries", "credential": "orders",
               "receivers": [{"name": "rx@h1", "url": fake.url + "/deliveries"}],
               "require": "new", "forbid": ["old"], "deadline": 0}, capsys)
    assert out["failed"] and "still matched the old secret: rx@h1 (1)" in out["msg"]


def test_module_validate_rejects_unknown_fields_before_anything_changes(capsys):
    out = run({"action": "validate", "credential": "orders",
               "sender": dict(sender_block("https://s.example"), owner="x")}, capsys)
    assert out["failed"] and "owner" in out["msg"]
    assert TOKEN not in json.dumps(out)
