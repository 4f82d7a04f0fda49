"""Pure logic of the stores: the rotation state machine, the layouts, encodings, argspec.

No server is started: the store classes are built without connecting, and their pure
parts (_state, _render, _desired) are fed raw data by hand.
"""
import copy
import re

import pytest
import yaml

from ansible_collections.credops.rotation.plugins.doc_fragments.store import ModuleDocFragment
from ansible_collections.credops.rotation.plugins.lookup.store import pick
from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._stores import _base
from ansible_collections.credops.rotation.plugins.module_utils._stores._base import (
    Store, empty_state, normalize_items, plan, public_view)
from ansible_collections.credops.rotation.plugins.module_utils._stores.aws_secretsmanager import (
    AwsSecretsManagerStore, decode_tag, encode_tag, version_token)
from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import (
    STORE_ARGSPEC, STORES, get_store, validate_store_config)
from ansible_collections.credops.rotation.plugins.module_utils._stores.vault_kv2 import VaultKV2Store
from ansible_collections.credops.rotation.plugins.module_utils._time import normalize_time as iso_utc
from ansible_collections.credops.rotation.plugins.modules.secret_store import diff_view

NOW = "2025-01-02T03:04:05Z"
KV, AWS = True, False   # pending_is_current


def state(phase=None, current=None, current_id=None, pending=None, pending_id=None,
          previous=None, previous_id=None, inflight=None, metadata=None, data=None):
    s = empty_state()
    s.update(exists=current is not None or pending is not None, phase=phase, current=current,
             current_id=current_id, pending=pending, pending_id=pending_id, previous=previous,
             previous_id=previous_id, inflight=inflight, metadata=dict(metadata or {}),
             data=dict(data or {}))
    return s


# a store in each situation, for each kind of store
KV_STATES = {
    "empty": state(),
    "finished": state("finished", "old", "k0", metadata={"last_rotated": "2024-01-01T00:00:00Z"}),
    "rolled_back": state("rolled_back", "old", "k0"),
    "pending": state("pending", "new", "k1", "new", "k1", "old", "k0", "current"),
    "deployed": state("deployed", "new", "k1", "new", "k1", "old", "k0", "current"),
    "verified": state("verified", "new", "k1", "new", "k1", "old", "k0", "current",
                      metadata={"last_rotated": "2024-01-01T00:00:00Z"}),
    "first-verified": state("verified", "new", "k1", "new", "k1", None, None, "current"),
}
AWS_STATES = {
    "empty": state(),
    "finished": state("finished", "old", "k0"),
    "rolled_back": state("rolled_back", "old", "k0"),
    "pending": state("pending", "old", "k0", "new", "k1", inflight="pending"),
    "deployed": state("deployed", "old", "k0", "new", "k1", inflight="pending"),
    "verified": state("verified", "old", "k0", "new", "k1", inflight="pending"),
    "promoted": state("verified", "new", "k1", None, None, "old", "k0", "current"),
    "first-verified": state("verified", "new", "k1", "new", "k1", inflight="pending"),
    "half-rolled-back": state("deployed", "old", "k0", inflight=None),
}


# -- the state machine: which steps are allowed from where -----------------------------------

TRANSITIONS = [
    # (kind, from, action, kwargs, resulting phase or "refused: <text>")
    (KV, "empty", "pending", dict(value="new", key_id="k1"), "pending"),
    (KV, "finished", "pending", dict(value="new", key_id="k1"), "pending"),
    (KV, "rolled_back", "pending", dict(value="new", key_id="k1"), "pending"),
    (KV, "pending", "pending", dict(value="new", key_id="k1"), "pending"),          # same value
    (KV, "pending", "pending", dict(value="new"), "pending"),                       # id not given
    (KV, "pending", "pending", dict(value="other", key_id="k2"), "refused: already in flight"),
    (KV, "pending", "pending", dict(value="new", key_id="k2"), "refused: already in flight"),
    (KV, "verified", "pending", dict(value="other"), "refused: already in flight"),
    (KV, "empty", "pending", dict(value=""), "refused: no value"),
    (KV, "pending", "phase", dict(phase="deployed"), "deployed"),
    (KV, "pending", "phase", dict(phase="verified"), "verified"),
    (KV, "deployed", "phase", dict(phase="deployed"), "deployed"),
    (KV, "verified", "phase", dict(phase="deployed"), "refused: never moves back"),
    (KV, "finished", "phase", dict(phase="deployed"), "refused: no rotation in flight"),
    (KV, "pending", "phase", dict(phase="finished"), "refused: unknown phase"),
    (KV, "verified", "promote", {}, "verified"),
    (KV, "deployed", "promote", {}, "verified"),                                    # promote = verified
    (KV, "finished", "promote", {}, "finished"),
    (KV, "rolled_back", "promote", {}, "refused: nothing to promote"),
    (KV, "verified", "finished", {}, "finished"),
    (KV, "finished", "finished", {}, "finished"),
    (KV, "deployed", "finished", {}, "refused: every consumer verified"),
    (KV, "rolled_back", "finished", {}, "refused: start a rotation"),
    (KV, "deployed", "rollback", {}, "rolled_back"),
    (KV, "rolled_back", "rollback", {}, "rolled_back"),
    (KV, "finished", "rollback", {}, "refused: already revoked"),
    (KV, "empty", "rollback", {}, "refused: nothing to roll back"),
    (KV, "first-verified", "rollback", {}, "refused: held no value before"),
    (AWS, "empty", "pending", dict(value="new", key_id="k1"), "pending"),
    (AWS, "pending", "pending", dict(value="new", key_id="k1"), "pending"),
    (AWS, "promoted", "pending", dict(value="new", key_id="k1"), "verified"),       # same value
    (AWS, "promoted", "pending", dict(value="other"), "refused: already in flight"),
    (AWS, "pending", "promote", {}, "verified"),
    (AWS, "promoted", "promote", {}, "verified"),
    (AWS, "half-rolled-back", "promote", {}, "refused: no longer in the store"),
    (AWS, "verified", "finished", {}, "finished"),
    (AWS, "promoted", "finished", {}, "finished"),
    (AWS, "deployed", "rollback", {}, "rolled_back"),
    (AWS, "promoted", "rollback", {}, "rolled_back"),
    (AWS, "half-rolled-back", "rollback", {}, "rolled_back"),
    (AWS, "first-verified", "rollback", {}, "refused: held no value before"),
    (AWS, "half-rolled-back", "phase", dict(phase="verified"), "refused: no longer in the store"),
]


@pytest.mark.parametrize("kind, start, action, kwargs, expected", TRANSITIONS,
                         ids=["%s-%s-%s-%d" % ("kv" if t[0] else "aws", t[1], t[2], i)
                              for i, t in enumerate(TRANSITIONS)])
def test_transitions_allowed_and_refused(kind, start, action, kwargs, expected):
    before = (KV_STATES if kind else AWS_STATES)[start]
    frozen = copy.deepcopy(before)
    if expected.startswith("refused: "):
        with pytest.raises(RotationError) as err:
            plan(before, action, kind, now=NOW, **kwargs)
        assert expected[len("refused: "):] in err.value.render()
        assert err.value.fix
        assert "new" not in err.value.render().split("'")  # never a value in the message
    else:
        after = plan(before, action, kind, now=NOW, **kwargs)
        assert after["phase"] == expected
    assert before == frozen   # plan is pure


@pytest.mark.parametrize("kind, start, expected", [
    # (current, current_id, pending, pending_id, previous, previous_id, inflight) after pending
    (KV, "finished", ("new", "k1", "new", "k1", "old", "k0", "current")),
    (KV, "empty", ("new", "k1", "new", "k1", None, None, "current")),
    (AWS, "finished", ("old", "k0", "new", "k1", None, None, "pending")),
    (AWS, "empty", ("new", "k1", "new", "k1", None, None, "pending")),   # first version is current
])
def test_write_pending_slots(kind, start, expected):
    before = dict((KV_STATES if kind else AWS_STATES)[start], previous="stale" if not kind else None)
    after = plan(before, "pending", kind, value="new", key_id="k1", now=NOW,
                 data={"rotated_by": "alice"})
    got = tuple(after[k] for k in ("current", "current_id", "pending", "pending_id", "previous",
                                   "previous_id", "inflight"))
    assert got == expected
    assert after["data"] == {"rotated_at": NOW, "rotated_by": "alice"}


@pytest.mark.parametrize("kind, start, action, expected", [
    (AWS, "verified", "promote", ("new", "k1", None, None, "old", "k0", "current")),
    (AWS, "first-verified", "promote", ("new", "k1", None, None, None, None, "current")),
    (AWS, "verified", "finished", ("new", "k1", None, None, None, None, None)),
    (AWS, "promoted", "finished", ("new", "k1", None, None, None, None, None)),
    (AWS, "deployed", "rollback", ("old", "k0", None, None, None, None, None)),
    (AWS, "promoted", "rollback", ("old", "k0", None, None, None, None, None)),
    (KV, "verified", "finished", ("new", "k1", None, None, None, None, None)),
    (KV, "verified", "rollback", ("old", "k0", None, None, None, None, None)),
])
def test_value_slots_after(kind, start, action, expected):
    after = plan((KV_STATES if kind else AWS_STATES)[start], action, kind, now=NOW)
    got = tuple(after[k] for k in ("current", "current_id", "pending", "pending_id", "previous",
                                   "previous_id", "inflight"))
    assert got == expected


def test_finished_and_rollback_data():
    done = plan(KV_STATES["verified"], "finished", KV, now=NOW)
    assert done["metadata"]["last_rotated"] == NOW
    given = plan(KV_STATES["verified"], "finished", KV, now=NOW,
                 metadata={"last_rotated": "2025-01-01T00:00:00Z"})
    assert given["metadata"]["last_rotated"] == "2025-01-01T00:00:00Z"
    back = plan(KV_STATES["verified"], "rollback", KV, now=NOW)
    assert back["data"] == {"rotated_at": "2024-01-01T00:00:00Z", "rolled_back_at": NOW}
    assert back["metadata"]["last_rotated"] == "2024-01-01T00:00:00Z"   # unchanged
    verified = plan(KV_STATES["deployed"], "phase", KV, phase="verified", now=NOW)
    assert verified["data"]["rotation_verified_at"] == NOW


def test_metadata_rotation_phase_is_reserved():
    with pytest.raises(RotationError) as err:
        plan(KV_STATES["pending"], "phase", KV, phase="deployed", metadata={"rotation_phase": "x"})
    assert "rotation_phase" in err.value.message


@pytest.mark.parametrize("items, expected", [
    ({"consumers": ["web-app", "mobile-backend"]}, {"consumers": "web-app,mobile-backend"}),
    ({"n": 3, "ok": True, "gone": None}, {"n": "3", "ok": "true"}),
    ({"contact": "ops@example.org"}, {"contact": "ops@example.org"}),
    ({}, {}),
])
def test_normalize_items(items, expected):
    assert normalize_items(items) == expected


@pytest.mark.parametrize("items", [{"x": {"a": 1}}, {"x": [{"a": 1}]}, {"": "v"}])
def test_normalize_items_refuses_structures(items):
    with pytest.raises(ValueError):
        normalize_items(items)


@pytest.mark.parametrize("text, expected", [
    ("2024-08-15T10:30:00Z", "2024-08-15T10:30:00Z"),
    ("2024-08-15T10:30:00.123456789Z", "2024-08-15T10:30:00Z"),
    ("2024-08-15T12:30:00+02:00", "2024-08-15T10:30:00Z"),
    ("2024-08-15T10:30:00", "2024-08-15T10:30:00Z"),
    ("", None),
    (None, None),
])
def test_iso_utc(text, expected):
    assert iso_utc(text) == expected


# -- the base class: check mode, changed, errors ---------------------------------------------

class MemoryStore(Store):
    """A store in a dict, to test the Store base class."""
    kind = "memory"

    def __init__(self, held=None, pending_is_current=True):
        super(MemoryStore, self).__init__({}, "cred")
        self.held = held or state()
        self.pending_is_current = pending_is_current
        self.writes = 0

    def _load(self):
        return copy.deepcopy(self.held)

    def _in_sync(self, before, after):
        return all(before.get(k) == after.get(k) for k in _base.STATE_KEYS)

    def _apply(self, before, after):
        self.writes += 1
        self.held = copy.deepcopy(after)


def test_store_check_mode_writes_nothing_and_predicts():
    store = MemoryStore()
    changed, after = store.write_pending("v", "k", check_mode=True)
    assert changed and after["phase"] == "pending" and store.writes == 0
    changed, after = store.write_pending("v", "k")
    assert changed and store.writes == 1
    changed, again = store.write_pending("v", "k")
    assert not changed and store.writes == 1


def test_store_full_cycle_and_refusal():
    store = MemoryStore()
    store.write_pending("v1", "k1")
    for phase in ("deployed", "verified"):
        assert store.set_phase(phase)[0]
    assert store.promote()[0] is False
    assert store.clear_previous()[1]["phase"] == "finished"
    store.write_pending("v2", "k2")
    with pytest.raises(RotationError) as err:
        store.write_pending("v3", "k3")
    assert err.value.credential == "cred" and err.value.step == "store"
    assert "memory" in err.value.render() and "v3" not in err.value.render()
    changed, after = store.rollback()
    assert changed and (after["current"], after["phase"]) == ("v1", "rolled_back")
    assert store.rollback()[0] is False


# -- KV v2 layout ----------------------------------------------------------------------------

def kv(field=None):
    config = {"kind": "vault_kv2", "url": "http://127.0.0.1:1", "token": "t", "path": "a/b"}
    if field:
        config["field"] = field
    return VaultKV2Store(config, "cred")


def test_kv_contract_layout_is_read():
    raw = {"exists": True, "version": 3, "custom_metadata": {
        "rotation_phase": "deployed", "consumers": "web-app,batch", "last_rotated": "2024-01-01T00:00:00Z"},
        "data": {"api_key": "new", "key_id": "k1", "previous_api_key": "old", "previous_key_id": "k0",
                 "rotated_at": "2024-02-01T00:00:00Z", "username": "svc", "client_secret": "other-secret"}}
    s = kv("api_key")._state(raw, "2024-02-01T00:00:01Z")
    assert (s["current"], s["current_id"], s["previous"], s["previous_id"]) == ("new", "k1", "old", "k0")
    assert (s["pending"], s["pending_id"], s["inflight"], s["phase"]) == ("new", "k1", "current", "deployed")
    assert s["metadata"] == {"consumers": "web-app,batch", "last_rotated": "2024-01-01T00:00:00Z"}
    assert s["data"] == {"rotated_at": "2024-02-01T00:00:00Z"}   # other keys may be secrets
    assert s["last_rotated"] == "2024-01-01T00:00:00Z" and s["version"] == 3


def test_kv_phase_in_data_wins_and_repairs_last_rotated():
    raw = {"exists": True, "version": 5, "custom_metadata": {"rotation_phase": "verified"},
           "data": {"value": "new", "rotation_phase": "finished"}}
    s = kv()._state(raw, "2025-01-01T00:00:00Z")
    assert s["phase"] == "finished"
    assert s["last_rotated"] == "2025-01-01T00:00:00Z"   # when the finishing write happened


def test_kv_render_exact_layout_and_keeps_other_keys():
    store = kv("api_key")
    raw = {"exists": True, "version": 1, "custom_metadata": {"owner": "team"},
           "data": {"api_key": "old", "key_id": "k0", "username": "svc"}}
    before = store._state(raw, None)
    after = plan(before, "pending", KV, value="new", key_id="k1", now=NOW,
                 metadata={"consumers": ["a", "b"]}, data={"rotated_by": "alice"})
    data, custom = store._render(before, after)
    assert data == {"api_key": "new", "key_id": "k1", "previous_api_key": "old", "previous_key_id": "k0",
                    "username": "svc", "rotation_phase": "pending", "rotated_at": NOW, "rotated_by": "alice"}
    assert custom == {"owner": "team", "consumers": "a,b", "rotation_phase": "pending"}
    raw2 = {"exists": True, "version": 2, "custom_metadata": custom, "data": data}
    done = plan(plan(store._state(raw2, None), "phase", KV, phase="verified", now=NOW), "finished", KV, now=NOW)
    data, custom = store._render(store._state(raw2, None), done)
    assert not [k for k in data if k.startswith("previous_")]
    assert custom["rotation_phase"] == "finished" and custom["last_rotated"] == NOW


@pytest.mark.parametrize("config, text", [
    ({"kind": "vault_kv2", "url": "http://x", "path": "p", "field": "key_id"}, "collides"),
    ({"kind": "vault_kv2", "url": "http://x", "path": "p", "field": "previous_value"}, "collides"),
    ({"kind": "vault_kv2", "url": "http://x"}, "path"),
    ({"kind": "aws_secretsmanager"}, "secret_id"),
    ({"kind": "nope", "path": "p"}, "unknown store kind"),
    ({"kind": "vault_kv2", "path": "p", "bogus": 1}, "bogus"),
])
def test_bad_store_blocks_fail_in_preflight_naming_the_field(config, text):
    with pytest.raises(RotationError) as err:
        get_store(config, "cred")
    assert text in err.value.render() and err.value.credential == "cred"


def test_store_block_defaults_and_env(monkeypatch):
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:8200")
    monkeypatch.setenv("VAULT_TOKEN", "tok")
    config = validate_store_config({"kind": "vault_kv2", "path": "p"})
    assert (config["url"], config["token"], config["mount"], config["auth_method"]) == \
        ("http://127.0.0.1:8200", "tok", "secret", "token")
    store = get_store({"kind": "vault_kv2", "path": "p"}, "cred")
    assert (store.field, store.mount, store.describe()) == ("value", "secret", "secret/p")


# -- AWS Secrets Manager -----------------------------------------------------------------------

@pytest.mark.parametrize("text", ["web-app,mobile-backend", "a=b", "=2C", "ünïcødé,x", "plain text",
                                  "2024-08-15T10:30:00Z", "ops@example.org", "50%", ""])
def test_tag_encoding_roundtrip_and_charset(text):
    encoded = encode_tag(text)
    assert re.match(r"^[A-Za-z0-9 +\-=.:_/@]*$", encoded)
    assert decode_tag(encoded) == text


def test_tag_encoding_is_readable():
    assert encode_tag("web-app,mobile-backend") == "web-app=2Cmobile-backend"
    assert encode_tag("2024-08-15T10:30:00Z") == "2024-08-15T10:30:00Z"


def test_version_tokens_are_deterministic_and_do_not_carry_the_value():
    one = version_token("sid", "key-1")
    assert one == version_token("sid", "key-1") != version_token("sid", "key-2") != version_token("other", "key-1")
    value = version_token("sid", None, "s3cret-value")
    assert value == version_token("sid", None, "s3cret-value") != version_token("sid", None, "s3cret-valuf")
    for token in (one, value):
        assert 32 <= len(token) <= 64 and re.match(r"^credops-[0-9a-f]+$", token)
        assert "s3cret" not in token and "key-1" not in token


def aws(field=None):
    config = {"kind": "aws_secretsmanager", "secret_id": "sid", "region": "us-east-1"}
    if field:
        config["field"] = field
    return AwsSecretsManagerStore(config, "cred")


def aws_raw(labels, strings, tags):
    return {"exists": True, "labels": labels, "strings": strings, "tags": tags}


def test_aws_labels_map_to_slots_and_ids_follow_the_tokens():
    store = aws("api_key")
    t1, t2 = store.token("k1"), store.token("k2")
    # tags still name k1 as pending: a run stopped after promoting, before the tags
    raw = aws_raw({"AWSCURRENT": t1, "AWSPREVIOUS": t2},
                  {t1: '{"api_key": "new", "user": "svc"}', t2: '{"api_key": "old"}'},
                  {"rotation_phase": "verified", "key_id": "k2", "pending_key_id": "k1",
                   "rotation_version": t1, "consumers": "a,b", "rotated_by": "alice"})
    s = store._state(raw, {"LastRotatedDate": None}, {})
    assert (s["current"], s["current_id"], s["previous"], s["previous_id"]) == ("new", "k1", "old", "k2")
    assert (s["pending"], s["inflight"], s["phase"]) == (None, "current", "verified")
    assert s["metadata"] == {"consumers": "a,b"} and s["data"] == {"rotated_by": "alice"}


def test_aws_pending_label_means_in_flight_whatever_the_tags_say():
    store = aws()
    raw = aws_raw({"AWSCURRENT": "v-old", "AWSPENDING": "v-new"}, {"v-old": "old", "v-new": "new"},
                  {"rotation_phase": "finished", "key_id": "k0"})
    s = store._state(raw, {}, {})
    assert (s["phase"], s["inflight"], s["pending"]) == ("pending", "pending", "new")
    with pytest.raises(RotationError):
        plan(s, "pending", AWS, value="other")


def test_aws_desired_labels_for_promote_and_rollback():
    store = aws()
    raw = aws_raw({"AWSCURRENT": "v-old", "AWSPENDING": "v-new"}, {"v-old": "old", "v-new": "new"},
                  {"rotation_phase": "verified", "key_id": "k0", "pending_key_id": "k1",
                   "rotation_version": "v-new"})
    before = store._state(raw, {}, {})
    labels, tags = store._desired(before, plan(before, "promote", AWS, now=NOW))
    assert labels == {"AWSCURRENT": "v-new", "AWSPENDING": None, "AWSPREVIOUS": "v-old"}
    assert tags["key_id"] == "k1" and tags["previous_key_id"] == "k0" and "pending_key_id" not in tags
    labels, tags = store._desired(before, plan(before, "rollback", AWS, now=NOW))
    assert labels == {"AWSCURRENT": "v-old", "AWSPENDING": None, "AWSPREVIOUS": None}
    assert tags["rotation_phase"] == "rolled_back" and "rotation_version" not in tags
    # finished without a promote first: the old value becomes AWSPREVIOUS and keeps it
    labels, tags = store._desired(before, plan(before, "finished", AWS, now=NOW))
    assert labels == {"AWSCURRENT": "v-new", "AWSPENDING": None, "AWSPREVIOUS": "v-old"}
    assert tags["rotation_phase"] == "finished" and "previous_key_id" not in tags


def test_aws_finished_keeps_awsprevious_on_the_revoked_value_but_not_as_a_previous_value():
    store = aws()
    raw = aws_raw({"AWSCURRENT": "v-new", "AWSPREVIOUS": "v-old"}, {"v-old": "old", "v-new": "new"},
                  {"rotation_phase": "verified", "key_id": "k1", "previous_key_id": "k0"})
    verified = store._state(raw, {}, {})
    assert (verified["previous"], _base.with_new_and_old(dict(verified))["old"]) == ("old", "old")
    after = plan(verified, "finished", AWS, now=NOW)
    labels, tags = store._desired(verified, after)
    assert labels == {"AWSCURRENT": "v-new", "AWSPENDING": None, "AWSPREVIOUS": "v-old"}
    finished = store._state(aws_raw(raw["labels"], raw["strings"], tags), {}, {})
    assert (finished["phase"], finished["previous"], finished["previous_id"]) == ("finished", None, None)
    assert _base.with_new_and_old(dict(finished))["old"] is None
    assert store._in_sync(finished, plan(finished, "finished", AWS, now=NOW))  # a second finish changes nothing
    labels, _tags = store._desired(finished, plan(finished, "finished", AWS, now=NOW))
    assert labels == {"AWSCURRENT": "v-new", "AWSPENDING": None, "AWSPREVIOUS": "v-old"}
    with pytest.raises(RotationError, match="nothing to roll back"):
        plan(finished, "rollback", AWS, now=NOW)
    # the next rotation drops it when it writes its pending value; AWS moves it again on promote
    labels, _tags = store._desired(finished, plan(finished, "pending", AWS, value="newer", key_id="k2", now=NOW))
    assert labels["AWSPREVIOUS"] is None and labels["AWSCURRENT"] == "v-new"


def test_aws_new_pending_version_and_field_json():
    store = aws("api_key")
    raw = aws_raw({"AWSCURRENT": "v-old"}, {"v-old": '{"api_key": "old", "username": "svc"}'},
                  {"rotation_phase": "finished"})
    before = store._state(raw, {}, {})
    labels, tags = store._desired(before, plan(before, "pending", AWS, value="new", key_id="k1", now=NOW))
    assert labels["AWSCURRENT"] == "v-old" and labels["AWSPENDING"] == "<new version>"
    assert tags["rotation_version"] == store.token("k1")
    import json
    assert json.loads(store._compose("new", raw["strings"]["v-old"])) == {"api_key": "new", "username": "svc"}


def test_aws_field_needs_json():
    with pytest.raises(RotationError) as err:
        aws("api_key")._extract("not json")
    assert "not JSON" in err.value.message


# -- what leaves the module / lookup: never a value ---------------------------------------------

def test_diff_and_summary_carry_placeholders_only():
    before = KV_STATES["finished"]
    after = plan(before, "pending", KV, value="brand-new-secret", key_id="k1", now=NOW)
    diff = diff_view(before, after)
    text = repr(diff) + repr(public_view(after)) + repr(pick(after, "metadata"))
    assert "brand-new-secret" not in text and "'old'" not in text
    assert diff["before"]["current"] == "<secret>" and diff["after"]["current"] == "<secret changed>"
    assert diff["after"]["previous"] == "<secret changed>" and diff["before"]["previous"] is None
    assert diff["after"]["key_id"] == "k1" and diff["after"]["phase"] == "pending"


NEW_OLD = [
    # (kind, state) -> (new, new_id, old, old_id): the same meaning for every store kind
    (KV, "pending", ("new", "k1", "old", "k0")),
    (KV, "verified", ("new", "k1", "old", "k0")),
    (KV, "first-verified", ("new", "k1", None, None)),
    (KV, "finished", ("old", "k0", None, None)),
    (KV, "empty", (None, None, None, None)),
    (AWS, "pending", ("new", "k1", "old", "k0")),
    (AWS, "promoted", ("new", "k1", "old", "k0")),
    (AWS, "first-verified", ("new", "k1", None, None)),
    (AWS, "finished", ("old", "k0", None, None)),
    (AWS, "rolled_back", ("old", "k0", None, None)),
]


@pytest.mark.parametrize("kind, name, expected", NEW_OLD,
                         ids=["%s-%s" % ("kv" if k else "aws", n) for k, n, _e in NEW_OLD])
def test_new_and_old_mean_the_same_for_every_store(kind, name, expected):
    s = _base.with_new_and_old(copy.deepcopy((KV_STATES if kind else AWS_STATES)[name]))
    assert (s["new"], s["new_id"], s["old"], s["old_id"]) == expected


@pytest.mark.parametrize("what, expected", [
    ("current", "old"), ("pending", "new"), ("previous", None), ("new", "new"), ("old", "old"),
])
def test_lookup_pick(what, expected):
    assert pick(_base.with_new_and_old(copy.deepcopy(AWS_STATES["pending"])), what) == expected
    meta = pick(_base.with_new_and_old(copy.deepcopy(AWS_STATES["pending"])), "metadata")
    assert (meta["new_key_id"], meta["old_key_id"], meta["in_flight"]) == ("k1", "k0", True)
    assert "new" not in meta.values() and "old" not in meta.values()


@pytest.mark.parametrize("text, limit, expected", [
    ("short", 512, "short"), ("x" * 600, 512, "x" * 512), ("é" * 300, 512, "é" * 256),
])
def test_fit_utf8(text, limit, expected):
    assert _base.fit_utf8(text, limit) == expected


def test_long_metadata_is_cut_to_fit_the_stores():
    from ansible_collections.credops.rotation.plugins.module_utils._stores.aws_secretsmanager import fit_tag
    reason = "web-app@web1, web-app@web2, " * 30
    cut = fit_tag(reason)
    assert len(encode_tag(cut)) <= 256 and reason.startswith(cut)
    before = KV_STATES["deployed"]
    after = plan(before, "rollback", KV, now=NOW, metadata={"rollback_reason": reason})
    store = kv()
    data, custom = store._render(dict(before, _raw={"data": {}, "custom_metadata": {}}), after)
    assert len(custom["rollback_reason"].encode("utf-8")) == 512


# -- the doc fragment mirrors STORE_ARGSPEC ------------------------------------------------------

def test_doc_fragment_mirrors_argspec():
    doc = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]["store"]["suboptions"]
    assert sorted(doc) == sorted(STORE_ARGSPEC)
    for name, spec in STORE_ARGSPEC.items():
        assert doc[name]["type"] == spec["type"], name
        assert doc[name].get("default") == spec.get("default"), name
        assert doc[name].get("required", False) == spec.get("required", False), name
        assert sorted(doc[name].get("choices") or []) == sorted(spec.get("choices") or []), name
    assert STORE_ARGSPEC["token"]["no_log"] and STORE_ARGSPEC["approle_secret_id"]["no_log"]
    assert STORE_ARGSPEC["secret_id"]["no_log"] is False   # the AWS secret's name, not a secret
    assert sorted(STORE_ARGSPEC["kind"]["choices"]) == sorted(STORES)


@pytest.mark.parametrize("custom, data, expected", [
    ({"last_rotated": "2024-01-01T00:00:00Z"}, {"rotated_at": "2024-06-01T00:00:00Z"}, "2024-01-01T00:00:00Z"),
    ({}, {"rotated_at": "2024-06-01T00:00:00.5Z"}, "2024-06-01T00:00:00Z"),
    ({}, {}, "2024-09-09T09:09:09Z"),   # a secret no rotation wrote: the version's created_time
])
def test_kv_last_rotated_order(custom, data, expected):
    raw = {"exists": True, "version": 4, "custom_metadata": custom, "data": dict(data, value="v")}
    assert kv()._state(raw, "2024-09-09T09:09:09Z")["last_rotated"] == expected
