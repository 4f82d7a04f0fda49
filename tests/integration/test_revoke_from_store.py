"""revoke_key with ``store``: the emergency's first step, reading the value to revoke from the
store and revoking it in one module run, against the real OpenBao and the demo provider.

One playbook covers four store states; the provider's own API and request log, and hvac,
check what really happened. Every byte of the -vvv output is searched for the values.
"""
import secrets

import hvac
import pytest

from tests.integration.test_issue_revoke import REVOKE, rest_issuer, run_tasks

pytestmark = pytest.mark.lab

MOUNT = "secret"


def _store(openbao, name):
    return dict(kind="vault_kv2", url=openbao.addr, mount=MOUNT, path="revoke-from-store/" + name, field="api_key")


def _write(openbao, name, data, phase, **custom):
    client = hvac.Client(url=openbao.addr, token=openbao.token)
    path = "revoke-from-store/" + name
    client.secrets.kv.v2.create_or_update_secret(path=path, mount_point=MOUNT,
                                                 secret=dict(data, rotation_phase=phase))
    client.secrets.kv.v2.update_metadata(path=path, mount_point=MOUNT,
                                         custom_metadata=dict(custom, rotation_phase=phase))


@pytest.fixture(scope="module")
def outcome(openbao, provider):
    tag = secrets.token_hex(3)
    keys = {n: provider.create_key("rfs-%s-%s" % (n, tag)) for n in ("a1", "b0", "b1", "c1", "d1", "d2")}
    # a: a finished rotation, key a1 current: the current value is the compromised one
    _write(openbao, "a-" + tag, {"api_key": keys["a1"][1], "key_id": keys["a1"][0]}, "finished")
    # b: a rotation in flight (deployed): the previous value b0 is the one at risk, b1 must live
    _write(openbao, "b-" + tag, {"api_key": keys["b1"][1], "key_id": keys["b1"][0],
                                 "previous_api_key": keys["b0"][1], "previous_key_id": keys["b0"][0]}, "deployed")
    # c: incident INC-C already handled: c1 is its replacement and must live
    _write(openbao, "c-" + tag, {"api_key": keys["c1"][1], "key_id": keys["c1"][0]}, "finished",
           last_incident="INC-C-" + tag)
    # d: an explicit key id (d2) the store does not hold: revoked, but cannot be proven dead
    _write(openbao, "d-" + tag, {"api_key": keys["d1"][1], "key_id": keys["d1"][0]}, "finished")
    issuer = rest_issuer(provider)

    def task(name, **over):
        args = dict(credential="rfs-" + name, issuer=issuer, store=_store(openbao, name + "-" + tag),
                    prove_dead=True, force=True)
        args.update(over)
        return ("r_" + name, REVOKE, args, {})

    before = len(provider.requests())
    results, proc = run_tasks([
        task("a"), task("b"), task("c", incident="INC-C-" + tag), task("d", key_id=keys["d2"][0]),
        ("r_a_again", REVOKE, dict(credential="rfs-a", issuer=issuer, store=_store(openbao, "a-" + tag),
                                   prove_dead=True, force=True), {}),
    ], env=dict(openbao.env()))
    deletes = [r["key_id"] for r in provider.requests()[before:] if r["method"] == "DELETE"]
    return dict(results=results, proc=proc, keys=keys, deletes=deletes, provider=provider, tag=tag)


def _status(outcome, name):
    return outcome["provider"].test_key(outcome["keys"][name][1])


def test_the_current_value_of_a_finished_rotation_is_revoked_and_proven_dead(outcome):
    r = outcome["results"]["r_a"]
    assert not r.get("failed"), r.get("msg")
    assert r["changed"] and r["revoked"] and r["proven_dead"] is True
    assert r["key_id"] == outcome["keys"]["a1"][0]
    assert r["store_state"]["phase"] == "finished" and r["store_state"]["key_id"] == outcome["keys"]["a1"][0]
    assert r["already_handled"] is False
    assert _status(outcome, "a1") == 401


def test_in_flight_the_previous_value_is_revoked_and_the_new_one_lives(outcome):
    r = outcome["results"]["r_b"]
    assert not r.get("failed"), r.get("msg")
    assert r["key_id"] == outcome["keys"]["b0"][0] and r["proven_dead"] is True
    assert r["store_state"]["in_flight"] is True and r["store_state"]["old_key_id"] == outcome["keys"]["b0"][0]
    assert _status(outcome, "b0") == 401
    assert _status(outcome, "b1") == 200
    assert outcome["keys"]["b1"][0] not in outcome["deletes"]


def test_an_incident_already_handled_revokes_nothing(outcome):
    r = outcome["results"]["r_c"]
    assert not r.get("failed"), r.get("msg")
    assert r["already_handled"] is True and not r["changed"] and not r["revoked"]
    assert "already handled" in r["msg"]
    assert _status(outcome, "c1") == 200
    assert outcome["keys"]["c1"][0] not in outcome["deletes"]


def test_an_explicit_key_id_the_store_does_not_hold_is_revoked_without_proof(outcome):
    r = outcome["results"]["r_d"]
    assert not r.get("failed"), r.get("msg")
    assert r["key_id"] == outcome["keys"]["d2"][0] and r["changed"] and r["proven_dead"] is None
    assert any("cannot be proven dead" in w for w in r.get("warnings", []))
    assert _status(outcome, "d2") == 401
    assert _status(outcome, "d1") == 200


def test_a_second_run_finds_the_value_already_revoked(outcome):
    r = outcome["results"]["r_a_again"]
    assert not r.get("failed"), r.get("msg")
    assert r["changed"] is False and r["revoked"] is True and r["proven_dead"] is True
    assert outcome["deletes"].count(outcome["keys"]["a1"][0]) >= 1


def test_no_value_in_any_output(outcome):
    text = outcome["proc"].stdout + outcome["proc"].stderr
    for key_id, value in outcome["keys"].values():
        assert value not in text
