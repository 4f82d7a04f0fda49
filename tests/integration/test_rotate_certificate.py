"""rotate.yml for a TLS certificate (type certificate, issuer vault_pki) against the lab: the
OpenBao PKI issues it, OpenBao KV v2 stores it, two systemd hosts serve it over HTTPS.

Every result is checked with an independent client, never with the collection: Python's
ssl (a verified handshake against the lab CA, the host's IP as the name) and cryptography
for what each host presents, hvac for the store and the PKI, cryptography for the CRL, the
hosts' own files (nsenter) for what was deployed.

The lab PKI role allows at most 720h (30 days), and a certificate with a lifetime of 30 days
or less is always due under the policy ("30 days before not_after"): these tests name the
credential (named credentials rotate whether due or not), and test the due rule itself by
backdating the validity the store records (custom_metadata not_before/not_after).
"""
import itertools
import re

import pytest

from tests.lab import tls
from tests.lab.ansible_runner import run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.hosts]

_PORTS = itertools.count(8443)


class Scenario:
    """A fresh certificate credential: own name, own KV path, own service and port on both hosts."""

    def __init__(self, lab, name, port, reload=False):
        self.lab, self.name, self.port = lab, name, port
        self.ca = tls.ca_pem(lab)
        self.ca_path = lab.workdir / "lab-ca.pem"
        self.ca_path.write_text(self.ca)
        self.old = tls.seed_certificate(lab, name, port=port)
        self.old_serial = tls.serial_int(self.old["serial_number"])
        self.record = tls.certificate_record(lab, name, port=port, ca_path=self.ca_path, reload=reload)
        self.inventory = self.write_inventory()

    def write_inventory(self, suffix="", **changes):
        record = dict(self.record, **changes)
        return self.lab.write_inventory(
            path=self.lab.workdir / ("inv-%s%s.yml" % (self.name, suffix)), credentials={self.name: record},
            groups={"web": [h.name for h in self.lab.hosts]})

    def rotate(self, extra=None, names=True, verbosity=0, tags=None, inventory=None):
        ev = {"credentials": [self.name]} if names else {}
        ev.update(extra or {})
        return run_playbook("playbooks/rotate.yml", inventory=inventory or self.inventory, extra_vars=ev or None,
                            env=self.lab.env(), verbosity=verbosity, tags=tags, timeout=600)

    def served_serials(self, serial=None):
        return [tls.wait_served(h.address, self.port, self.ca, serial=serial, deadline=15).serial_number
                for h in self.lab.hosts]

    def events(self):
        return [e for e in self.lab.audit_entries() if e["credential"] == self.name]


@pytest.fixture
def make_scenario(rotation_lab, request):
    """Scenario(reload=...) for this test; its services and files are removed afterwards."""
    lab = rotation_lab
    made = []

    def make(reload=False):
        name = "cert-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[5:35].strip("-")
        (lab.workdir / "rotation-audit.jsonl").unlink(missing_ok=True)
        made.append(name)
        return Scenario(lab, name, next(_PORTS), reload=reload)

    yield make
    for name in made:
        for host in lab.hosts:
            tls.remove_tls_consumer(host, name)


def _no_private_key(texts, keys, public=()):
    """No private key, whole or in part, in any of the texts. A line of a key's base64 that also
    appears in a certificate (the public modulus, encoded alike in both) is public, not a leak."""
    bodies = [line for key in keys for line in key.splitlines()
              if len(line) >= 40 and not any(line in text for text in public)]
    assert bodies
    for text in texts:
        assert "PRIVATE KEY" not in text
        for line in bodies:
            assert line not in text


def test_certificate_rotation_end_to_end(make_scenario):
    sc = make_scenario()
    lab = sc.lab
    assert sc.served_serials() == [sc.old_serial] * len(lab.hosts)
    files = sc.record["consumers"][0]
    lab.hosts[0].run("chown", "65534:65534", files["key_file"])   # the owner of an existing file is kept
    proc = sc.rotate(verbosity=3)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    # the store: the new key as the value, its certificate beside it, the previous one cleared
    data, meta = tls.kv_read(lab, sc.name)
    new_serial = tls.serial_int(data["key_id"])
    assert new_serial != sc.old_serial and data[tls.FIELD] != sc.old["private_key"]
    assert tls.first_certificate(data["certificate"]).serial_number == new_serial
    assert tls.key_matches(data["certificate"], data[tls.FIELD])
    assert "previous_" + tls.FIELD not in data and "previous_key_id" not in data
    custom = meta["custom_metadata"]
    assert custom["rotation_phase"] == "finished" and custom["consumers"] == "tls-app"
    not_after = tls.first_certificate(data["certificate"]).not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert data["not_after"] == custom["not_after"] == not_after
    assert tls.serial_int(custom["certificate_serial"]) == new_serial

    # every host presents the new certificate over a verified handshake, and is healthy
    assert sc.served_serials() == [new_serial] * len(lab.hosts)
    for host in lab.hosts:
        assert tls.health(host.address, sc.port, sc.ca) == (200, {"status": "up"})
        modes = host.run("stat", "-c", "%a", files["key_file"], files["cert_file"], files["ca_file"]).stdout.split()
        assert modes == ["600", "644", "644"]
        owner = host.run("stat", "-c", "%u", files["key_file"]).stdout.strip()
        assert owner == ("65534" if host is lab.hosts[0] else "0")
        assert host.read_file(files["key_file"]).strip() == data[tls.FIELD].strip()
        assert tls.first_certificate(host.read_file(files["cert_file"])).serial_number == new_serial
        assert host.read_file(files["ca_file"]).strip() == sc.ca.strip()

    # the old certificate is revoked at the PKI and on its CRL; the new one is not
    revoked = tls.crl_serials(lab)
    assert sc.old_serial in revoked and new_serial not in revoked
    assert tls.client(lab).secrets.pki.read_certificate(sc.old["serial_number"])["data"]["revocation_time"] > 0

    # the audit trail, in order, and no private key anywhere (output at -vvv, audit trail)
    events = sc.events()
    names = [e["event"] for e in events]
    assert names.index("issued") < names.index("stored") < names.index("deployed")
    assert names.index("finished") > names.index("revoked") > max(i for i, n in enumerate(names) if n == "verified")
    assert [tls.serial_int(e["key_id"]) for e in events if e["event"] == "revoked"] == [sc.old_serial]
    assert len([e for e in events if e["event"] == "verified" and e.get("consumer")]) == len(lab.hosts)
    _no_private_key([proc.stdout, proc.stderr, (lab.workdir / "rotation-audit.jsonl").read_text()],
                    [sc.old["private_key"], data[tls.FIELD]], public=[sc.old["certificate"], data["certificate"]])
    assert lab.openbao.token not in proc.stdout + proc.stderr

    # A re-run WITHOUT names or force is due again at once: the lab's certificates live 72h,
    # and a lifetime of 30 days or less is always due under the policy (30 days before
    # not_after). The plan says so (--tags preflight changes nothing).
    plan = sc.rotate(names=False, tags="preflight")
    assert plan.returncode == 0, plan.stdout[-4000:]
    assert "Rotating: %s" % sc.name in plan.stdout
    # With max_age_days (the policy's override for short-lived certificates) it is not due.
    relaxed = sc.write_inventory(suffix="-max-age", max_age_days=1)
    plan = sc.rotate(names=False, tags="preflight", inventory=relaxed)
    assert plan.returncode == 0, plan.stdout[-4000:]
    assert "Nothing to rotate" in plan.stdout
    assert tls.serial_int(tls.kv_read(lab, sc.name)[0]["key_id"]) == new_serial


def _iso(days):
    import datetime
    when = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=days)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# (not_before, not_after) in days from now, whose serial the dates are recorded for, due?
DUE_CASES = {
    "third-left": (-265, 100, "current", True),    # 365-day certificate, 100 days left: < 1/3 left
    "not-due": (-165, 200, "current", False),      # 365-day certificate, 200 days left: > 1/3 and > 30 days
    "margin": (-5, 25, "current", True),           # 25 days left: within 30 days of not_after
    "stale-serial": (-10, 355, "other", True),     # recorded for another serial (a rolled-back rotation): unknown
}


def test_due_by_the_recorded_validity(rotation_lab):
    """rotate.yml without names rotates the certificates that are due by the validity the store
    records (backdated here), and only those. --tags preflight: the plan, nothing changes."""
    lab = rotation_lab
    credentials, serials = {}, {}
    for case, (not_before, not_after, serial, _due) in DUE_CASES.items():
        name = "cert-due-" + case
        cert = tls.seed_certificate(lab, name, install=False)
        serials[name] = cert["serial_number"]
        tls.set_custom_metadata(lab, name, not_before=_iso(not_before), not_after=_iso(not_after),
                                certificate_serial=cert["serial_number"] if serial == "current" else "0a:0b:0c")
        credentials[name] = tls.certificate_record(lab, name)
    inventory = lab.write_inventory(path=lab.workdir / "inv-cert-due.yml", credentials=credentials,
                                    groups={"web": [h.name for h in lab.hosts]})
    proc = run_playbook("playbooks/rotate.yml", inventory=inventory, env=lab.env(), tags="preflight")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "Rotating: " in proc.stdout, proc.stdout[-4000:]
    plan = proc.stdout.split("Rotating: ", 1)[1].split("TASK [")[0]
    queued = set(re.findall(r"cert-due-[a-z]+(?:-[a-z]+)?", plan))
    assert queued == {"cert-due-" + case for case, spec in DUE_CASES.items() if spec[3]}
    for name, serial in serials.items():   # nothing changed
        assert tls.kv_read(lab, name)[0]["key_id"] == serial


def _describes_the_old_certificate(sc, data, meta):
    """After a roll back the store's record beside the key (certificate, validity, serial) is
    the old certificate's again, not the revoked new one's."""
    assert tls.first_certificate(data["certificate"]).serial_number == sc.old_serial
    custom = meta["custom_metadata"]
    assert tls.serial_int(custom["certificate_serial"]) == sc.old_serial
    old = tls.first_certificate(sc.old["certificate"])
    assert custom["not_after"] == data["not_after"] == old.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_failed_verification_rolls_back(make_scenario):
    """The consumer reloads (`reload: true`); on the second host the reload does nothing, so it
    keeps presenting the old certificate and its verification (expect_serial) fails: the
    rotation rolls back everywhere and the new certificate is revoked."""
    sc = make_scenario(reload=True)
    lab = sc.lab
    broken = lab.hosts[1]
    broken.put_file("/etc/systemd/system/%s.service.d/no-reload.conf" % sc.name,
                    "[Service]\nExecReload=\nExecReload=/bin/true\n")
    broken.systemctl("daemon-reload")
    proc = sc.rotate(extra={"rotation_verify_deadline": 5})
    assert proc.returncode != 0
    assert "Rolled back: %s" % sc.name in proc.stdout, proc.stdout[-6000:]
    assert "EXCEPT" not in proc.stdout

    # the store holds the old key and serial again; the new certificate is in its history
    data, meta = tls.kv_read(lab, sc.name)
    assert tls.serial_int(data["key_id"]) == sc.old_serial and data[tls.FIELD] == sc.old["private_key"]
    assert meta["custom_metadata"]["rotation_phase"] == "rolled_back"
    _describes_the_old_certificate(sc, data, meta)
    pending, _pending_meta = tls.kv_read(lab, sc.name, version=2)
    new_serial = tls.serial_int(pending["key_id"])
    assert new_serial != sc.old_serial

    # both hosts present the old certificate again, from the old files
    assert sc.served_serials(serial=sc.old_serial) == [sc.old_serial] * len(lab.hosts)
    files = sc.record["consumers"][0]
    for host in lab.hosts:
        assert tls.first_certificate(host.read_file(files["cert_file"])).serial_number == sc.old_serial
        assert host.read_file(files["key_file"]).strip() == sc.old["private_key"].strip()

    # the new certificate is revoked and on the CRL; the old one is not
    revoked = tls.crl_serials(lab)
    assert new_serial in revoked and sc.old_serial not in revoked

    events = sc.events()
    names = [e["event"] for e in events]
    assert "failed" in names and "rolled_back" in names and "finished" not in names
    assert any(e["event"] == "failed" and e.get("consumer", "").endswith("@" + broken.name) for e in events)
    assert [tls.serial_int(e["key_id"]) for e in events if e["event"] == "revoked"] == [new_serial]
    _no_private_key([proc.stdout, proc.stderr, (lab.workdir / "rotation-audit.jsonl").read_text()],
                    [sc.old["private_key"], pending[tls.FIELD]], public=[sc.old["certificate"], pending["certificate"]])


def test_interrupted_after_store_resumes(make_scenario):
    """A run stopped after the store step (the new certificate pending, no consumer has it) is
    finished by the next run with the same certificate, read back from the PKI by serial."""
    sc = make_scenario()
    lab = sc.lab
    proc = sc.rotate(tags="issue,store")
    data, meta = tls.kv_read(lab, sc.name)
    assert meta["custom_metadata"]["rotation_phase"] == "pending", proc.stdout[-4000:]
    pending_serial = tls.serial_int(data["key_id"])
    assert pending_serial != sc.old_serial
    assert sc.served_serials() == [sc.old_serial] * len(lab.hosts)

    proc = sc.rotate()
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert "resuming from pending" in proc.stdout
    data, meta = tls.kv_read(lab, sc.name)
    assert meta["custom_metadata"]["rotation_phase"] == "finished"
    assert tls.serial_int(data["key_id"]) == pending_serial, "a second new certificate was issued"
    assert sc.served_serials() == [pending_serial] * len(lab.hosts)
    files = sc.record["consumers"][0]
    for host in lab.hosts:
        assert host.read_file(files["ca_file"]).strip() == sc.ca.strip()
    assert [e["event"] for e in sc.events()].count("issued") == 1
    assert sc.old_serial in tls.crl_serials(lab)


def test_rollback_playbook_restores_the_old_certificate(make_scenario):
    """rollback.yml on a rotation stopped half-way (one host already has the new certificate):
    the old certificate, read from the PKI by serial, is back everywhere; the new one revoked."""
    sc = make_scenario()
    lab = sc.lab
    sc.rotate(tags="issue,store")
    data, _meta = tls.kv_read(lab, sc.name)
    new_serial = tls.serial_int(data["key_id"])
    host = lab.hosts[0]
    files = sc.record["consumers"][0]
    host.put_file(files["cert_file"], data["certificate"] + "\n", mode=0o644)
    host.put_file(files["key_file"], data[tls.FIELD] + "\n", mode=0o600)
    host.systemctl("restart", sc.name + ".service")
    tls.wait_served(host.address, sc.port, sc.ca, serial=new_serial)

    proc = run_playbook("playbooks/rollback.yml", inventory=sc.inventory, env=lab.env(),
                        extra_vars={"credential": sc.name, "reason": "INC-7 bad certificate"})
    assert proc.returncode == 0, proc.stdout[-6000:]
    data, meta = tls.kv_read(lab, sc.name)
    assert tls.serial_int(data["key_id"]) == sc.old_serial and data[tls.FIELD] == sc.old["private_key"]
    assert meta["custom_metadata"]["rotation_phase"] == "rolled_back"
    _describes_the_old_certificate(sc, data, meta)
    assert sc.served_serials(serial=sc.old_serial) == [sc.old_serial] * len(lab.hosts)
    assert host.read_file(files["key_file"]).strip() == sc.old["private_key"].strip()
    assert new_serial in tls.crl_serials(lab) and sc.old_serial not in tls.crl_serials(lab)
