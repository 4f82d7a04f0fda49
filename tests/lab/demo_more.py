"""`python -m tests.lab demo-more`: a TLS certificate, a database password (alternating roles)
and an AWS IAM access key, each rotated for real by

    ansible-playbook playbooks/rotate.yml -i INVENTORY -e force=true

against one lab (OpenBao, moto, PostgreSQL, 2 systemd hosts), with the evidence before and
after read by clients that are not the collection's code:

- certificate: Python's ssl (a handshake verified against the lab CA and the host's IP) and
  cryptography for the serial each host presents; OpenBao's CRL parsed with cryptography;
- database password: psql as the admin (which role may log in), psycopg (a real login with the
  new password, the old role refused), the consumers' health endpoints (they log in themselves);
- AWS: boto3 against moto (IAM access keys, Secrets Manager staging labels, STS), the consumers'
  health endpoints (they sign STS calls with the key pair on their host).

The setup is the integration tests' own (tests/lab/tls.py, tests/lab/scenarios_more.py), so what
this shows is what tests/integration/test_rotate_{certificate,postgres,aws}.py prove.

No secret value is printed: values are shown as sha256 fingerprints. At the end the audit trail
and every byte of the playbook output are searched for every secret value of the demo (old and
new); the exit code is non-zero when one is found, a run failed or a check did not hold.
"""
import collections
import hashlib
import re
import secrets as pysecrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORKDIR = ROOT / ".lab" / "demo-more"

CERT_NAME = "billing-api-tls"
TLS_PORT = 8443
DB_NAME = "orders-db"
DB_ROLES = ("orders_app_a", "orders_app_b")
AWS_NAME = "integration-service-account"


# --- output -----------------------------------------------------------------------------------------

def step(text):
    print("\n\033[1m== %s\033[0m" % text, flush=True)


def say(text=""):
    print("  " + text, flush=True)


def fp(value):
    """A value's fingerprint: the first 12 hex digits of its sha256 (never the value)."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()[:12]


def serial_hex(serial):
    """A certificate serial as Vault spells it (aa:bb:...)."""
    text = "%x" % serial
    text = ("0" + text) if len(text) % 2 else text
    return ":".join(text[i:i + 2] for i in range(0, len(text), 2))


def rel(path):
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return str(path)


class Checks:
    """Each piece of evidence is also checked: '[ok]' or '[FAIL]', and the demo fails on any FAIL."""

    def __init__(self):
        self.failed = []

    def __call__(self, condition, text):
        say("%s %s" % ("[ok]  " if condition else "[FAIL]", text))
        if not condition:
            self.failed.append(text)
        return bool(condition)


class Secrets:
    """Every secret value of the demo (and the pieces of it that would betray a partial leak), to
    redact what is shown on failure and to count what the audit trail and the output contain."""

    def __init__(self):
        self.values = {}      # label -> value
        self.public = []      # texts whose lines are public (certificates)

    def add(self, label, value):
        if value:
            self.values[label] = value

    def _pieces(self, value):
        pieces = [value]
        if "PRIVATE KEY" in value:
            # a PEM key leaks line by line too; a base64 line also found in a certificate is public
            pieces += [line for line in value.splitlines()
                       if len(line) >= 40 and not any(line in text for text in self.public)]
            pieces.append("PRIVATE KEY-----")
        return pieces

    def found(self, text):
        """The labels of the secret values found (whole or by a piece) in text."""
        return sorted(label for label, value in self.values.items()
                      if any(piece in text for piece in self._pieces(value)))

    def redact(self, text):
        for label, value in self.values.items():
            for piece in sorted(self._pieces(value), key=len, reverse=True):
                text = text.replace(piece, "[REDACTED %s]" % label)
        return text


class Watch:
    """Calls fn() every `interval` seconds in a thread while a run goes on; keeps each change of
    the answer (with the time since the start) and how often each answer was seen."""

    def __init__(self, fn, interval=0.2):
        self.fn, self.interval = fn, interval
        self.changes, self.counts = [], collections.Counter()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            try:
                value = self.fn()
            except Exception as exc:  # noqa: BLE001 - an unreachable service is an answer too
                value = ("error", type(exc).__name__)
            self.counts[value] += 1
            if not self.changes or self.changes[-1][1] != value:
                self.changes.append((time.monotonic() - self.t0, value))
            self._stop.wait(self.interval)

    def __enter__(self):
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(10)


# --- the playbook run ---------------------------------------------------------------------------------

RESULT = re.compile(r"^(ok|changed|failed|fatal|skipping): \[([^\]]+?)(?: -> [^\]]+)?\]")
ROLE_TASK = re.compile(r"^TASK \[credops\.rotation\.([a-z_]+) : (Plan \|)?")


def run_rotate(lab, inventory, env, vault, logname):
    """ansible-playbook playbooks/rotate.yml -i INVENTORY -e force=true, output captured (and
    searched later); shows each phase (role, host) as it starts. Returns (rc, output, seconds)."""
    from tests.lab.ansible_runner import ansible_env

    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/rotate.yml",
           "-i", str(inventory), "-e", "force=true"]
    say("$ ansible-playbook playbooks/rotate.yml -i %s -e force=true" % rel(inventory))
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=str(ROOT), env=ansible_env(env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, errors="replace")
    lines, role, shown = [], None, None
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("TASK ["):
                task = ROLE_TASK.match(line)
                role = ("plan" if task.group(2) else task.group(1)) if task else None
                continue
            result = RESULT.match(line)
            if role and result and (role, result.group(2)) != shown:
                shown = (role, result.group(2))
                say("  %6.1fs  %-10s %s" % (time.monotonic() - started, role, result.group(2)))
        rc = proc.wait(timeout=60)
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    elapsed = time.monotonic() - started
    output = "".join(lines)
    (WORKDIR / logname).write_text(vault.redact(output))
    for line in output.splitlines():
        said = re.search(r"(Rotating: |Rotated: |Nothing to rotate|Rolled back: ).*", line)
        if said:
            say("  " + vault.redact(said.group(0).rstrip("'\"")))
    recap = output.split("PLAY RECAP", 1)[1].splitlines()[1:] if "PLAY RECAP" in output else []
    say("  PLAY RECAP")
    for line in recap:
        if line.strip():
            say("    " + re.sub(r"\s+", " ", line.strip()))
    say("  ... (%d lines of output, full in %s)" % (len(lines), rel(WORKDIR / logname)))
    if rc != 0:
        say("  the run failed; its last lines (secrets redacted):")
        for line in vault.redact(output).splitlines()[-25:]:
            say("  | " + line)
    return rc, output, elapsed


def _http(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001
        return None, {"error": type(exc).__name__}


# --- 1. a TLS certificate -------------------------------------------------------------------------------

def certificate(lab, check, vault, runs):
    from tests.lab import tls

    hosts = lab.hosts
    step("1/3 Certificate %s: issuer vault_pki (OpenBao PKI), store OpenBao KV v2, served over "
         "HTTPS by the systemd service %s.service on %s" % (CERT_NAME, CERT_NAME, ", ".join(h.name for h in hosts)))
    ca = tls.ca_pem(lab)
    ca_path = WORKDIR / "lab-ca.pem"
    ca_path.write_text(ca)
    old = tls.seed_certificate(lab, CERT_NAME, port=TLS_PORT)
    vault.add("certificate private key (old)", old["private_key"])
    vault.public.append(old["certificate"])
    old_serial = tls.serial_int(old["serial_number"])
    record = tls.certificate_record(lab, CERT_NAME, port=TLS_PORT, ca_path=ca_path)
    inventory = lab.write_inventory(path=WORKDIR / "inv-certificate.yml", credentials={CERT_NAME: record},
                                    groups={"web": [h.name for h in hosts]})

    say("Before: what each host presents (Python ssl, handshake verified against the lab CA and the "
        "host's IP; serial read with cryptography)")
    for h in hosts:
        cert = tls.wait_served(h.address, TLS_PORT, ca, deadline=15)
        say("  %-5s https://%s:%d  serial %s  not after %s" % (
            h.name, h.address, TLS_PORT, serial_hex(cert.serial_number),
            cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")))
        check(cert.serial_number == old_serial, "%s presents the seeded certificate" % h.name)
    say("  private key in the store: %s" % fp(old["private_key"]))
    check(old_serial not in tls.crl_serials(lab), "the current serial is not on OpenBao's CRL")

    with Watch(lambda: tuple(_served_serial(tls, h, ca) for h in hosts), interval=0.3) as watch:
        rc, output, elapsed = run_rotate(lab, inventory, lab.env(), vault, "rotate-certificate.log")
    runs.append(("certificate", CERT_NAME, rc, elapsed, output))

    step("1/3 After (%.1f s wall time, exit code %d)" % (elapsed, rc))
    data, meta = tls.kv_read(lab, CERT_NAME)
    vault.add("certificate private key (new)", data.get(tls.FIELD))
    vault.public.append(data.get("certificate", ""))
    new_serial = tls.serial_int(data["key_id"])
    say("What each host presents now (same independent check):")
    for h in hosts:
        cert = _wait_served(tls, h, ca, new_serial)
        if cert is None:
            check(False, "%s presents a certificate" % h.name)
            continue
        say("  %-5s https://%s:%d  serial %s  not after %s" % (
            h.name, h.address, TLS_PORT, serial_hex(cert.serial_number),
            cert.not_valid_after_utc.strftime("%Y-%m-%d %H:%M UTC")))
        check(cert.serial_number != old_serial, "%s: new serial differs from the old one (%s)" % (
            h.name, serial_hex(old_serial)))
        check(cert.serial_number == new_serial, "%s presents the serial the store records as current" % h.name)
        status, body = _http(tls.health, h.address, TLS_PORT, ca)
        check(status == 200, "%s GET https://%s:%d/health -> %s %s" % (h.name, h.address, TLS_PORT, status, body))
    say("  private key in the store: %s -> %s; rotation_phase=%s; previous key kept: %s" % (
        fp(old["private_key"]), fp(data.get(tls.FIELD, "")), meta["custom_metadata"].get("rotation_phase"),
        "previous_" + tls.FIELD in data))
    say("Seen during the run (serial each host presented, every 0.3 s):")
    names = {old_serial: "old", new_serial: "new"}
    for at, value in watch.changes:
        say("  %6.1fs  %s" % (at, ", ".join("%s=%s" % (h.name, names.get(v, v)) for h, v in zip(hosts, value))))
    crl = tls.crl_serials(lab)
    say("OpenBao CRL (GET pki/crl, parsed with cryptography): %d revoked serial(s)" % len(crl))
    check(old_serial in crl, "the old serial %s is on the CRL" % serial_hex(old_serial))
    check(new_serial not in crl, "the new serial is not on the CRL")
    return rc


def _served_serial(tls, host, ca):
    try:
        return tls.served_certificate(host.address, TLS_PORT, ca, timeout=2).serial_number
    except Exception:  # noqa: BLE001 - restarting
        return "down"


def _wait_served(tls, host, ca, serial):
    try:
        return tls.wait_served(host.address, TLS_PORT, ca, serial=serial, deadline=15)
    except AssertionError:
        try:
            return tls.served_certificate(host.address, TLS_PORT, ca)
        except Exception:  # noqa: BLE001
            return None


# --- 2. a database password, alternating roles ------------------------------------------------------

def _login(pg, role, password):
    """A real login with psycopg: (current_user, None) or (None, why it was refused)."""
    import psycopg
    try:
        with psycopg.connect(pg.dsn(user=role, password=password), application_name="credops-demo") as conn:
            return conn.execute("select current_user").fetchone()[0], None
    except psycopg.OperationalError as exc:
        text = str(exc)
        for reason in ("password authentication failed", "is not permitted to log in"):
            if reason in text:
                return None, reason
        return None, type(exc).__name__


def database(lab, check, vault, runs):
    from tests.lab import scenarios_more as more

    hosts, pg = lab.hosts, lab.postgres
    role_a, role_b = DB_ROLES
    step("2/3 Database password %s: issuer postgres with alternating roles %s/%s, store OpenBao KV v2, "
         "consumer orders-app.service on %s" % (DB_NAME, role_a, role_b, ", ".join(h.name for h in hosts)))
    old_pw = "Old-" + pysecrets.token_urlsafe(24)
    vault.add("database password (old)", old_pw)
    group = more.seed_db_alternating(lab, pg, DB_NAME, DB_ROLES, old_pw)
    table = group + "_orders"
    record = more.db_record(lab, pg, DB_NAME, roles=list(DB_ROLES))
    inventory = lab.write_inventory(path=WORKDIR / "inv-database.yml", credentials={DB_NAME: record},
                                    groups={"web": [h.name for h in hosts]})
    health = {h.name: more.service_url(h, more.DB_PORT, "/health/database") for h in hosts}

    def roles_state():
        return ", ".join("%s=%s" % (r, "LOGIN" if more.role_can_login(pg, r) else "NOLOGIN") for r in DB_ROLES)

    data, _meta = more.db_kv_read(lab, DB_NAME)
    say("Before:")
    say("  PostgreSQL (psql as %s, pg_roles): %s" % (pg.admin_user, roles_state()))
    say("  store (hvac): key_id=%s (the role in use), password %s" % (data["key_id"], fp(data["password"])))
    user, why = _login(pg, role_a, old_pw)
    check(user == role_a, "psycopg login as %s with the stored password: current_user=%s%s" % (
        role_a, user, "" if why is None else " (%s)" % why))
    check(not more.role_can_login(pg, role_b), "%s is idle (NOLOGIN)" % role_b)
    for h in hosts:
        status, body = more.http_status(health[h.name], deadline=5), more.http_json(health[h.name])
        say("  %-5s GET %s -> %s %s" % (h.name, health[h.name], status, body))

    env = dict(lab.env(), PGPASSWORD=pg.admin_password)
    with Watch(lambda: tuple(more.http_status(health[h.name], deadline=0) for h in hosts)) as watch:
        rc, output, elapsed = run_rotate(lab, inventory, env, vault, "rotate-database.log")
    runs.append(("database", DB_NAME, rc, elapsed, output))

    step("2/3 After (%.1f s wall time, exit code %d)" % (elapsed, rc))
    data, meta = more.db_kv_read(lab, DB_NAME)
    new_pw = data.get("password", "")
    vault.add("database password (new)", new_pw)
    say("PostgreSQL (psql as %s, pg_roles): %s" % (pg.admin_user, roles_state()))
    say("store (hvac): key_id=%s, password %s -> %s, rotation_phase=%s, previous kept: %s" % (
        data.get("key_id"), fp(old_pw), fp(new_pw), meta["custom_metadata"].get("rotation_phase"),
        "previous_password" in data))
    check(data.get("key_id") == role_b and new_pw != old_pw, "the role in use moved %s -> %s" % (role_a, role_b))
    user, why = _login(pg, role_b, new_pw)
    check(user == role_b, "psycopg login as %s with the new password: current_user=%s%s" % (
        role_b, user, "" if why is None else " (%s)" % why))
    insert = pg.psql("insert into %s values (1); select count(*) from %s" % (table, table), user=role_b,
                     password=new_pw)
    check(insert.returncode == 0, "%s writes to and reads %s (psql)" % (role_b, table))
    user, why = _login(pg, role_a, old_pw)
    check(user is None, "psycopg login as %s with the old password: refused (%s)" % (role_a, why))
    check(not more.role_can_login(pg, role_a), "%s is idle now (NOLOGIN): the next rotation's target" % role_a)
    for h in hosts:
        status, body = more.http_status(health[h.name], deadline=15), more.http_json(health[h.name])
        check(status == 200 and body.get("user") == role_b,
              "%s GET %s -> %s %s" % (h.name, health[h.name], status, body))
    statuses = collections.Counter()
    for value, count in watch.counts.items():
        for status in value:
            statuses[status] += count
    say("The consumers' health during the run (%d probes every 0.2 s): %s" % (
        sum(statuses.values()), ", ".join("%s: %d" % ("no answer (restarting)" if s is None else s, n)
                                          for s, n in sorted(statuses.items(), key=str))))
    check(statuses.get(503, 0) == 0, "no consumer reported a refused login during the run (zero downtime)")
    return rc


# --- 3. an AWS IAM access key in Secrets Manager ----------------------------------------------------

def aws(lab, check, vault, runs):
    from tests.lab import scenarios_more as more

    hosts = lab.hosts
    secret_id = "rotation/" + AWS_NAME
    step("3/3 AWS access key of IAM user %s: issuer aws_iam, store Secrets Manager %s (moto), consumer "
         "aws-exporter.service on %s" % (AWS_NAME, secret_id, ", ".join(h.name for h in hosts)))
    old_id, old_secret = more.seed_aws_key(lab, AWS_NAME)
    vault.add("AWS secret access key (old)", old_secret)
    record = more.aws_key_record(lab, AWS_NAME)
    inventory = lab.write_inventory(path=WORKDIR / "inv-aws.yml", credentials={AWS_NAME: record},
                                    groups={"web": [h.name for h in hosts]})
    health = {h.name: more.service_url(h, more.AWS_PORT, "/health/aws") for h in hosts}
    old_labels = more.sm_labels(lab, AWS_NAME)
    old_version = old_labels.get("AWSCURRENT")

    say("Before (boto3 against moto):")
    say("  IAM list-access-keys: %s" % more.iam_keys(lab, AWS_NAME))
    say("  Secrets Manager labels: %s; AWSCURRENT value %s; tag credops:key_id=%s" % (
        old_labels, fp(more.sm_value(lab, AWS_NAME)), more.sm_tags(lab, AWS_NAME).get("credops:key_id")))
    check(more.sts_user(lab, old_id, old_secret) == AWS_NAME,
          "STS GetCallerIdentity with the stored pair (%s) answers user/%s" % (old_id, AWS_NAME))
    for h in hosts:
        status, body = more.http_status(health[h.name], deadline=5), more.http_json(health[h.name])
        say("  %-5s GET %s -> %s %s" % (h.name, health[h.name], status, body))

    def aws_state():
        return (tuple(sorted(more.iam_keys(lab, AWS_NAME).items())),
                tuple(sorted(more.sm_labels(lab, AWS_NAME).items())))

    with Watch(aws_state, interval=0.15) as watch:
        rc, output, elapsed = run_rotate(lab, inventory, lab.env(), vault, "rotate-aws.log")
    runs.append(("aws", AWS_NAME, rc, elapsed, output))

    step("3/3 After (%.1f s wall time, exit code %d)" % (elapsed, rc))
    keys = more.iam_keys(lab, AWS_NAME)
    labels = more.sm_labels(lab, AWS_NAME)
    tags = more.sm_tags(lab, AWS_NAME)
    new_id = tags.get("credops:key_id", "")
    new_secret = more.sm_value(lab, AWS_NAME)
    vault.add("AWS secret access key (new)", new_secret)
    new_version = labels.get("AWSCURRENT")
    say("IAM list-access-keys: %s" % keys)
    check(new_id != old_id and keys == {new_id: "Active"}, "the new key %s is the only key" % new_id)
    check(old_id not in keys, "the old key %s is gone from IAM" % old_id)
    check(more.sts_user(lab, new_id, new_secret) == AWS_NAME, "STS with the new pair answers user/%s" % AWS_NAME)
    check(more.sts_user(lab, old_id, old_secret) != AWS_NAME, "STS with the old pair no longer answers user/%s"
          % AWS_NAME)
    say("Secrets Manager labels: %s; AWSCURRENT value %s -> %s; tags credops:key_id=%s, rotation_phase=%s" % (
        labels, fp(old_secret), fp(new_secret), new_id, tags.get("credops:rotation_phase")))
    check(new_version and new_version != old_version, "AWSCURRENT moved to a new version")
    versions = _sm_versions(lab, secret_id)
    for vid, stages in versions:
        say("  version %s %s" % (vid, stages or "(no label: deprecated)"))
    names = {old_id: "OLD", new_id: "NEW", old_version: "v-old", new_version: "v-new"}
    say("Seen during the run (IAM keys and staging labels, every 0.15 s):")
    for at, (seen_keys, seen_labels) in watch.changes:
        say("  %6.1fs  IAM %-22s labels %s" % (
            at, "{%s}" % ", ".join(names.get(k, k) for k, _status in seen_keys),
            ", ".join("%s=%s" % (stage, names.get(vid, vid)) for stage, vid in seen_labels)))
    seen_labels = [dict(value[1]) for _at, value in watch.changes]
    check(any(seen.get("AWSCURRENT") == new_version and seen.get("AWSPREVIOUS") == old_version
              for seen in seen_labels),
          "during the run AWSCURRENT moved to the new version and the old one became AWSPREVIOUS")
    check(labels == {"AWSCURRENT": new_version, "AWSPREVIOUS": old_version},
          "after the run the old (deleted) key's version keeps AWSPREVIOUS, as AWS's own rotation leaves it")
    for h in hosts:
        status, body = more.http_status(health[h.name], deadline=15), more.http_json(health[h.name])
        check(status == 200 and body.get("aws") == "connected",
              "%s GET %s -> %s %s" % (h.name, health[h.name], status, body))
    return rc


def _sm_versions(lab, secret_id):
    """[(version id, stages)] of a secret, deprecated versions included (boto3)."""
    sm = lab.moto.client("secretsmanager")
    resp = sm.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)
    return [(v["VersionId"], v.get("VersionStages") or []) for v in resp.get("Versions", [])]


# --- the whole demo ---------------------------------------------------------------------------------

def _show_audit(lab):
    audit = WORKDIR / "rotation-audit.jsonl"
    entries = lab.audit_entries()
    step("Audit trail (%s): %d entries, key ids and serials only" % (rel(audit), len(entries)))
    for entry in entries:
        say("%s %-27s %-12s %-22s %s" % (
            entry.get("time", "")[11:23], entry.get("credential", ""), entry.get("event", ""),
            entry.get("consumer", "") or "", entry.get("key_id", "") or ""))
    return audit.read_text() if audit.exists() else ""


def _secret_count(vault, audit_text, runs):
    step("Secret values in the audit trail and in the playbook output")
    vault_list = ", ".join(sorted(vault.values))
    say("searched for %d values: %s" % (len(vault.values), vault_list))
    in_audit = vault.found(audit_text)
    in_output = sorted(set(label for _kind, _name, _rc, _s, output in runs for label in vault.found(output)))
    lines = sum(len(output.splitlines()) for *_rest, output in runs)
    say("found in the audit trail: %d%s" % (len(in_audit), (" (%s)" % ", ".join(in_audit)) if in_audit else ""))
    say("found in the playbook output (%d runs, %d lines): %d%s" % (
        len(runs), lines, len(in_output), (" (%s)" % ", ".join(in_output)) if in_output else ""))
    return len(set(in_audit) | set(in_output))


def demo(lab):
    check, vault, runs = Checks(), Secrets(), []
    vault.add("OpenBao root token (lab)", lab.openbao.token)
    vault.add("PostgreSQL admin password (lab)", lab.postgres.admin_password)
    vault.add("demo provider admin token (lab)", lab.provider.admin_token)
    for part in (certificate, database, aws):
        try:
            part(lab, check, vault, runs)
        except Exception:  # noqa: BLE001 - show it (redacted), go on with the next credential
            check(False, "%s: an error (traceback below, secrets redacted)" % part.__name__)
            for line in vault.redact(traceback.format_exc()).splitlines():
                say("| " + line)
    audit_text = _show_audit(lab)
    leaked = _secret_count(vault, audit_text, runs)
    step("Summary")
    for kind, name, rc, elapsed, _output in runs:
        say("%-12s %-28s rotate.yml exit %d, %5.1f s wall time" % (kind, name, rc, elapsed))
    failed_runs = [name for _kind, name, rc, _s, _o in runs if rc != 0]
    say("runs: %d of 3 succeeded; checks failed: %d; secret values found: %d" % (
        len(runs) - len(failed_runs), len(check.failed), leaked))
    for text in check.failed:
        say("FAILED: " + text)
    return 0 if len(runs) == 3 and not failed_runs and not check.failed and leaked == 0 else 1


def _terminate(signum, _frame):
    raise SystemExit(128 + signum)   # unwinds through `with Lab(...)`: the lab is torn down


def main(args):
    from tests.lab.lab import Lab

    signal.signal(signal.SIGTERM, _terminate)
    shutil.rmtree(WORKDIR, ignore_errors=True)
    step("Starting the lab: OpenBao (KV v2, PKI), moto (IAM, STS, Secrets Manager), PostgreSQL, "
         "%d systemd hosts (waits while another lab runs on this machine)" % args.hosts)
    started = time.monotonic()
    rc = 1
    try:
        with Lab(WORKDIR, hosts=args.hosts, postgres=True) as lab:
            try:
                say("lab up in %.1f s: OpenBao %s, moto %s, PostgreSQL 127.0.0.1:%d, hosts %s" % (
                    time.monotonic() - started, lab.openbao.addr, lab.moto.endpoint_url, lab.postgres.port,
                    ", ".join("%s=%s" % (h.name, h.address) for h in lab.hosts)))
                rc = demo(lab)
            finally:
                for attr in ("_aws_relay", "_db_relay"):
                    relay = getattr(lab, attr, None)
                    if relay is not None:
                        relay.stop()
    finally:
        step("Lab torn down (%.1f s in all)" % (time.monotonic() - started))
    return rc
