"""AWS end to end through the same playbooks: an IAM user's access key (issuer aws_iam) kept in
Secrets Manager (store aws_secretsmanager, AWSPENDING -> AWSCURRENT), used by a real consumer
on both systemd hosts that gets the key id too (id_env_var). Every result is checked with
independent clients: boto3 against the lab's moto server (IAM, STS, Secrets Manager) and the
hosts themselves (their files, their service's own STS call)."""
import re
import threading
import time

import pytest

from tests.lab import scenarios_more as more
from tests.lab.ansible_runner import run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.hosts]


@pytest.fixture(scope="module", autouse=True)
def _relay_stopped(rotation_lab):
    yield
    relay = getattr(rotation_lab, "_aws_relay", None)
    if relay is not None:
        relay.stop()
        rotation_lab._aws_relay = None


@pytest.fixture
def aws(rotation_lab, request):
    """A fresh IAM user (own name, own secret) with one key, consumed on both hosts."""
    lab = rotation_lab
    name = "aws-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[9:40].strip("-")
    (lab.workdir / "rotation-audit.jsonl").unlink(missing_ok=True)
    old_id, old_secret = more.seed_aws_key(lab, name)
    inventory = lab.write_inventory(path=lab.workdir / ("inv-%s.yml" % name),
                                    credentials={name: more.aws_key_record(lab, name)},
                                    groups={"web": [h.name for h in lab.hosts]})
    labels = more.sm_labels(lab, name)
    assert list(labels) == ["AWSCURRENT"]
    return type("AwsScenario", (), dict(lab=lab, name=name, old_id=old_id, old_secret=old_secret,
                                        old_version=labels["AWSCURRENT"], inventory=inventory))


def _run(sc, playbook="playbooks/rotate.yml", extra=None, **kwargs):
    extra_vars = {"credentials": [sc.name]} if playbook.endswith("rotate.yml") else {}
    extra_vars.update(extra or {})
    return run_playbook(playbook, inventory=sc.inventory, extra_vars=extra_vars, env=sc.lab.env(), timeout=600,
                        **kwargs)


def _env_file(host):
    res = host.run("stat", "-c", "%a", more.AWS_ENV_FILE)
    return res.stdout.strip(), host.read_file(more.AWS_ENV_FILE).splitlines()


def _events(lab, name):
    return [e for e in lab.audit_entries() if e["credential"] == name]


def _assert_no_secret(texts, *secrets):
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_aws_rotation_end_to_end(aws):
    sc, lab = aws, aws.lab
    proc = _run(sc, verbosity=3)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-3000:]

    # Secrets Manager: the new version is AWSCURRENT, the old (revoked) one keeps AWSPREVIOUS
    labels = more.sm_labels(lab, sc.name)
    assert labels == {"AWSCURRENT": labels["AWSCURRENT"], "AWSPREVIOUS": sc.old_version}
    assert labels["AWSCURRENT"] != sc.old_version
    new_secret = more.sm_value(lab, sc.name)
    tags = more.sm_tags(lab, sc.name)
    new_id = tags["credops:key_id"]
    assert tags["credops:rotation_phase"] == "finished" and "credops:previous_key_id" not in tags
    assert new_id != sc.old_id and new_secret != sc.old_secret
    # IAM: the old key is gone, the new one active; STS knows the new pair as the user, not the old
    assert more.iam_keys(lab, sc.name) == {new_id: "Active"}
    assert more.sts_user(lab, new_id, new_secret) == sc.name
    assert more.sts_user(lab, sc.old_id, sc.old_secret) != sc.name
    # every host: both lines replaced, nothing else, mode 0600, the service signs in with them
    for host in lab.hosts:
        mode, lines = _env_file(host)
        assert mode == "600"
        assert lines == ["LOG_LEVEL=info", "AWS_ACCESS_KEY_ID=" + new_id, "AWS_SECRET_ACCESS_KEY=" + new_secret]
        url = more.service_url(host, more.AWS_PORT, "/health/aws")
        assert more.http_status(url) == 200 and more.http_json(url)["arn"].endswith("user/" + sc.name)
    # the audit trail: issued, stored, deployed, verified, revoked, finished; key ids, no values
    events = _events(lab, sc.name)
    names = [e["event"] for e in events]
    assert names.index("issued") < names.index("stored") < names.index("deployed")
    assert names.index("finished") > names.index("revoked") > max(i for i, n in enumerate(names) if n == "verified")
    assert next(e for e in events if e["event"] == "issued")["key_id"] == new_id
    assert next(e for e in events if e["event"] == "revoked")["key_id"] == sc.old_id
    assert sorted(e["consumer"] for e in events if e["event"] == "deployed") == sorted(
        "aws-exporter@" + h.name for h in lab.hosts)
    _assert_no_secret([proc.stdout, proc.stderr, (lab.workdir / "rotation-audit.jsonl").read_text()],
                      sc.old_secret, new_secret, lab.openbao.token)

    # a re-run finds nothing due: no key issued, nothing touched
    proc = run_playbook("playbooks/rotate.yml", inventory=sc.inventory, env=lab.env())
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Nothing to rotate" in proc.stdout
    assert more.iam_keys(lab, sc.name) == {new_id: "Active"}
    assert more.sm_labels(lab, sc.name) == labels

    # the next rotation: AWSPREVIOUS moves on to the version it rotates out, as with AWS's own
    proc = _run(sc, extra={"force": True})
    assert proc.returncode == 0, proc.stdout[-6000:]
    again = more.sm_labels(lab, sc.name)
    assert set(again) == {"AWSCURRENT", "AWSPREVIOUS"} and again["AWSPREVIOUS"] == labels["AWSCURRENT"]
    assert again["AWSCURRENT"] not in (labels["AWSCURRENT"], sc.old_version)
    (third_id,) = more.iam_keys(lab, sc.name)
    assert third_id not in (sc.old_id, new_id) and more.sm_tags(lab, sc.name)["credops:key_id"] == third_id


def test_aws_failed_verification_rolls_back(aws):
    sc, lab = aws, aws.lab
    broken = lab.hosts[1]
    dropin = "/etc/systemd/system/%s.service.d/broken.conf" % more.AWS_SERVICE
    broken.put_file(dropin, "[Service]\nExecStartPre=/bin/false\n")
    broken.systemctl("daemon-reload")
    try:
        proc = _run(sc, extra={"rotation_verify_deadline": 5})
    finally:
        broken.run("rm", "-f", dropin)
        broken.systemctl("daemon-reload")
        broken.systemctl("restart", more.AWS_SERVICE + ".service", check=False)
    assert proc.returncode != 0
    assert "Rolled back: %s" % sc.name in proc.stdout, proc.stdout[-6000:]
    # Secrets Manager: AWSCURRENT never moved, the pending version lost its label
    assert more.sm_labels(lab, sc.name) == {"AWSCURRENT": sc.old_version}
    assert more.sm_value(lab, sc.name) == sc.old_secret
    tags = more.sm_tags(lab, sc.name)
    assert tags["credops:rotation_phase"] == "rolled_back" and tags["credops:key_id"] == sc.old_id
    # IAM: the unused new key is deleted, the old one still works
    assert more.iam_keys(lab, sc.name) == {sc.old_id: "Active"}
    assert more.sts_user(lab, sc.old_id, sc.old_secret) == sc.name
    for host in lab.hosts:
        _mode, lines = _env_file(host)
        assert "AWS_ACCESS_KEY_ID=" + sc.old_id in lines and "AWS_SECRET_ACCESS_KEY=" + sc.old_secret in lines
        assert more.http_status(more.service_url(host, more.AWS_PORT, "/health/aws")) == 200
    events = _events(lab, sc.name)
    names = [e["event"] for e in events]
    assert "failed" in names and "rolled_back" in names and "finished" not in names
    issued = next(e for e in events if e["event"] == "issued")["key_id"]
    assert any(e["event"] == "revoked" and e["key_id"] == issued for e in events)
    assert ("rolled_back", "aws-exporter@" + lab.hosts[0].name) in [(e["event"], e.get("consumer")) for e in events]


def test_aws_emergency_revokes_first(aws):
    sc, lab = aws, aws.lab
    # an "attacker" uses the key before the emergency
    assert more.sts_user(lab, sc.old_id, sc.old_secret) == sc.name
    seen, stop = [], threading.Event()

    def watch():  # IAM's own view, every 50 ms: the old and a new key must never coexist
        while not stop.is_set():
            keys = frozenset(more.iam_keys(lab, sc.name))
            if not seen or seen[-1] != keys:
                seen.append(keys)
            stop.wait(0.05)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        proc = _run(sc, "playbooks/emergency.yml", verbosity=0,
                    extra={"credential": sc.name, "incident": "INC-AWS-7",
                           "compromised_since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 300))})
    finally:
        stop.set()
        watcher.join(10)
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-2000:]
    keys = more.iam_keys(lab, sc.name)
    (new_id,) = keys
    assert keys == {new_id: "Active"} and new_id != sc.old_id
    assert seen[0] == {sc.old_id} and frozenset() in seen and seen[-1] == {new_id}
    assert all(not ({sc.old_id, new_id} <= s) for s in seen), seen
    assert seen.index(frozenset()) < seen.index(frozenset({new_id}))
    assert more.sts_user(lab, sc.old_id, sc.old_secret) != sc.name
    new_secret = more.sm_value(lab, sc.name)
    assert more.sm_labels(lab, sc.name)["AWSPREVIOUS"] == sc.old_version
    assert more.sm_tags(lab, sc.name)["credops:key_id"] == new_id
    for host in lab.hosts:
        _mode, lines = _env_file(host)
        assert "AWS_ACCESS_KEY_ID=" + new_id in lines and "AWS_SECRET_ACCESS_KEY=" + new_secret in lines
        assert more.http_status(more.service_url(host, more.AWS_PORT, "/health/aws")) == 200
    entries = _events(lab, sc.name)
    assert entries[0]["event"] == "revoked" and entries[0]["key_id"] == sc.old_id
    assert all(e.get("incident") == "INC-AWS-7" for e in entries)
    record = (lab.workdir / "incidents" / "INC-AWS-7.md").read_text()
    assert sc.old_id in record and new_id in record and "passed on every consumer" in record
    _assert_no_secret([proc.stdout, proc.stderr, record, (lab.workdir / "rotation-audit.jsonl").read_text()],
                      sc.old_secret, new_secret)


def test_aws_revoke_guard_keeps_a_key_still_in_use(aws):
    """A consumer the dependency map does not list keeps using the old key: nothing is revoked,
    the new key stays live, the run names the source; the operator then decides (force_revoke)
    and a re-run finishes the same rotation."""
    sc, lab = aws, aws.lab
    stop = threading.Event()

    def forgotten_consumer():
        while not stop.is_set():
            more.sts_user(lab, sc.old_id, sc.old_secret)
            stop.wait(0.3)
    user = threading.Thread(target=forgotten_consumer, daemon=True)
    user.start()
    try:
        proc = _run(sc, extra={"rotation_quiet_seconds": 2})
    finally:
        stop.set()
        user.join(10)
    assert proc.returncode != 0
    assert "was used" in proc.stdout and "sts/" + lab.moto.region in proc.stdout, proc.stdout[-6000:]
    keys = more.iam_keys(lab, sc.name)
    assert len(keys) == 2 and keys[sc.old_id] == "Active"
    tags = more.sm_tags(lab, sc.name)
    new_id = tags["credops:key_id"]
    assert new_id != sc.old_id and tags["credops:rotation_phase"] == "verified"
    # AWSCURRENT already moved (every consumer verified), the old value kept as AWSPREVIOUS
    labels = more.sm_labels(lab, sc.name)
    assert set(labels) == {"AWSCURRENT", "AWSPREVIOUS"} and labels["AWSPREVIOUS"] == sc.old_version
    for host in lab.hosts:
        assert "AWS_ACCESS_KEY_ID=" + new_id in _env_file(host)[1]

    proc = _run(sc, extra={"force_revoke": True})
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "resuming from verified" in proc.stdout
    assert more.iam_keys(lab, sc.name) == {new_id: "Active"}
    assert more.sm_labels(lab, sc.name)["AWSPREVIOUS"] == sc.old_version
    assert "credops:previous_key_id" not in more.sm_tags(lab, sc.name)
    events = _events(lab, sc.name)
    assert [e["event"] for e in events].count("issued") == 1
    revoked = [e for e in events if e["event"] == "revoked"]
    assert [e["key_id"] for e in revoked] == [sc.old_id] and revoked[0]["details"]["forced"] in (True, "True", "true")
