"""issue_key and revoke_key against the real lab: the demo provider (rest), moto (aws_iam),
PostgreSQL (postgres), OpenBao (vault_pki), and generated values.

The modules run through ansible-playbook, as in production. One ansible-playbook run costs
seconds here, so the scenario runs three playbooks that cover every kind at once: check
mode, the real issue, then revoke (check mode, real, re-run). Between them, and after, an
independent client (the provider's own API, boto3, psql, hvac + cryptography) looks at what
really happened. Every run is at -vvv and every byte of its output is searched for the
secrets the scenario planted or created.

Tasks that call issue_key set ``no_log: true``, as the module's documentation requires of
every caller (its result holds the new secret); revoke_key tasks do not, so its own masking
(``secret`` and the issuer's secret options are no_log) is what is tested there.
"""
import hashlib
import json
import re
import secrets
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tests.lab.ansible_runner import run_playbook

pytestmark = pytest.mark.lab

ISSUE = "credops.rotation.issue_key"
REVOKE = "credops.rotation.revoke_key"


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def run_tasks(tasks, env=None, verbosity=3):
    """Run module tasks in one playbook on localhost; returns ({id: result}, completed process).

    ``tasks`` is a list of (id, module, args, options) with options check / no_log. Every
    task ignores errors; the results are saved to a file by a no_log task, not read from
    the output, which stays free to be searched."""
    with tempfile.TemporaryDirectory(prefix="credops-it-") as tmp:
        out = Path(tmp) / "results.json"
        play_tasks = []
        for task_id, module, args, opts in tasks:
            task = {"name": task_id, module: args, "register": task_id, "ignore_errors": True,
                    "check_mode": bool(opts.get("check"))}
            if opts.get("no_log"):
                task["no_log"] = True
            play_tasks.append(task)
        content = "{{ dict(%s) | to_json }}" % ", ".join("%s=%s" % (t[0], t[0]) for t in tasks)
        play_tasks.append({"name": "Save results", "ansible.builtin.copy": {"content": content, "dest": str(out)},
                           "check_mode": False, "no_log": True})
        play = [{"hosts": "localhost", "gather_facts": False, "connection": "local", "tasks": play_tasks}]
        playbook = Path(tmp) / "play.yml"
        playbook.write_text(json.dumps(play))
        proc = run_playbook(playbook, inventory="localhost,", env=env, verbosity=verbosity, timeout=300,
                            extra_vars={"ansible_python_interpreter": sys.executable})
        assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
        return json.loads(out.read_text()), proc


# --- the issuer blocks, as an inventory would hold them ------------------------------------------
def rest_issuer(provider, **over):
    issuer = dict(
        kind="rest", base_url=provider.url,
        auth=dict(type="bearer", token=provider.admin_token),
        create=dict(method="POST", path="/v1/api-keys", body={"name": "credops-it", "permissions": ["read"]},
                    expect_status=[200, 201], secret_path="api_key", id_path="id"),
        revoke=dict(method="DELETE", path="/v1/api-keys/{id}"),
        get=dict(path="/v1/api-keys/{id}", active_path="status == 'active'"),
        test=dict(method="GET", path="/v1/test", header="Authorization", format="Bearer {secret}"),
        usage=dict(method="GET", path="/v1/audit-log?api_key_id={id}&since={since}", events_path="entries",
                   time_path="timestamp", source_path="source_ip"),
    )
    issuer.update(over)
    return issuer


class Scenario:
    """Everything the three runs did and what the independent clients saw in between."""

    def __init__(self):
        self.results = {}
        self.procs = []
        self.seen = {}
        self.planted = {}

    def run(self, tasks, env):
        results, proc = run_tasks(tasks, env=env)
        self.results.update(results)
        self.procs.append(proc)
        return results


def cert_serials(hvac_client):
    try:
        return set(hvac_client.secrets.pki.list_certificates(mount_point="pki")["data"]["keys"])
    except Exception:  # noqa: BLE001 - Vault answers an empty list with Not Found
        return set()


@pytest.fixture(scope="module")
def scenario(provider, moto, postgres, openbao):
    import hvac
    sc = Scenario()
    tag = secrets.token_hex(3)
    vault = hvac.Client(url=openbao.addr, token=openbao.token)
    iam = moto.client("iam")
    env = moto.env()

    # --- setup: a user with one (old) key, a login role with an old password -----------------
    user = "credops-svc-" + tag
    iam.create_user(UserName=user)
    k0 = iam.create_access_key(UserName=user)["AccessKey"]
    role = "credops_app_" + tag
    old_pw = "old-pw-" + secrets.token_urlsafe(16)
    res = postgres.psql("CREATE ROLE %s LOGIN PASSWORD '%s'" % (role, old_pw))
    assert res.returncode == 0, res.stderr
    cn = "svc-%s.lab.test" % tag
    sc.planted.update(admin_token=provider.admin_token, pg_admin=postgres.admin_password, vault_token=openbao.token,
                      aws_k0=k0["SecretAccessKey"], pg_old=old_pw)
    issuers = dict(
        rest=rest_issuer(provider),
        aws=dict(kind="aws_iam", user_name=user, endpoint_url=moto.endpoint_url, region=moto.region, wait_timeout=20),
        pg=dict(kind="postgres", host=postgres.host, port=postgres.port, db="postgres", admin_user=postgres.admin_user,
                admin_password=postgres.admin_password, role=role, valid_until_days=30, sslmode="disable"),
        vault=dict(kind="vault_pki", url=openbao.addr, token=openbao.token, mount="pki", role="lab", common_name=cn,
                   alt_names=["alt-%s.lab.test" % tag], ip_sans=["127.0.0.1"], ttl="1h"),
        gen=dict(kind="generated", length=40, alphabet="hex", prefix="whsec_"),
    )
    sc.issuers, sc.user, sc.role, sc.k0, sc.cn = issuers, user, role, k0, cn

    def issue(task_id, kind, check=False, **over):
        return (task_id, ISSUE, dict(credential="it-" + kind, issuer=dict(issuers[kind], **over)),
                dict(check=check, no_log=True))

    def revoke(task_id, kind, check=False, **args):
        return (task_id, REVOKE, dict(dict(credential="it-" + kind, issuer=issuers[kind]), **args), dict(check=check))

    # --- run 1: check mode -----------------------------------------------------------------------
    keys_before = provider.keys()
    certs_before = cert_serials(vault)
    provider.inject([429, 503])  # for run 2: check mode must not consume them
    mark = len(provider.requests())
    sc.run([issue("check_" + kind, kind, check=True) for kind in issuers]
           + [("check_bad_jmespath", ISSUE, dict(credential="it-rest", issuer=rest_issuer(
               provider, create=dict(path="/v1/api-keys", secret_path="api_key[", id_path="id"))), dict(check=True))],
           env)
    sc.seen["after_check"] = dict(
        provider_requests=[q for q in provider.requests()[mark:] if q["path"].startswith("/v1/")],
        provider_keys=provider.keys() == keys_before,
        aws_keys=[k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]],
        pg_old_login=postgres.psql("select 1", user=role, password=old_pw).returncode,
        certs=cert_serials(vault) == certs_before,
    )

    # --- run 2: the real issue -------------------------------------------------------------------
    mark = len(provider.requests())
    sc.run([issue("issue_rest", "rest"),
            issue("issue_rest_bad_path", "rest", create=dict(issuers["rest"]["create"], secret_path="data.key")),
            issue("issue_aws", "aws"), issue("issue_aws_third", "aws"),
            issue("issue_pg", "pg"),
            issue("issue_vault_a", "vault"), issue("issue_vault_b", "vault"),
            issue("issue_gen", "gen")], env)
    r = sc.results
    rest_secret, aws_k1, pg_new = r["issue_rest"]["secret"], r["issue_aws"], r["issue_pg"]["secret"]
    sc.planted.update(rest=rest_secret, aws_k1=aws_k1["secret"], pg_new=pg_new, gen=r["issue_gen"]["secret"])
    for name in ("issue_vault_a", "issue_vault_b"):
        body = "".join(r[name]["secret"].splitlines()[1:-1])
        sc.planted[name + "_key"] = body[100:160]
    sc.seen["after_issue"] = dict(
        rest_test=provider.test_key(rest_secret),
        rest_key=provider.keys().get(r["issue_rest"]["key_id"]),
        rest_creates=[q["status"] for q in provider.requests()[mark:]
                      if q["method"] == "POST" and q["path"] == "/v1/api-keys"],
        aws_keys={k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]},
        pg_new_login=postgres.psql("select current_user", user=role, password=pg_new),
        pg_old_login=postgres.psql("select 1", user=role, password=old_pw).returncode,
        pg_valid_until=postgres.psql("select extract(epoch from rolvaliduntil - now()) from pg_roles "
                                     "where rolname = '%s'" % role).stdout.strip(),
        vault_a=vault.secrets.pki.read_certificate(r["issue_vault_a"]["key_id"], mount_point="pki")["data"],
    )

    # --- between: use the rest key (the guard must see it), deactivate the old AWS key --------------
    sc.t0 = now_iso()
    time.sleep(0.05)
    assert provider.test_key(rest_secret) == 200
    time.sleep(0.05)
    sc.t1 = now_iso()
    iam.update_access_key(UserName=user, AccessKeyId=k0["AccessKeyId"], Status="Inactive")

    # --- run 3: revoke (check mode, real, re-run) ---------------------------------------------------
    mark = len(provider.requests())
    rest_id, a_serial, b_serial = r["issue_rest"]["key_id"], r["issue_vault_a"]["key_id"], r["issue_vault_b"]["key_id"]
    sc.run([
        revoke("rest_guard", "rest", key_id=rest_id, secret=rest_secret, unused_since=sc.t0),
        revoke("rest_check", "rest", check=True, key_id=rest_id, secret=rest_secret),
        revoke("rest_revoke", "rest", key_id=rest_id, secret=rest_secret, unused_since=sc.t1, prove_dead=True),
        revoke("rest_again", "rest", key_id=rest_id, secret=rest_secret, prove_dead=True),
        issue("aws_issue_room", "aws", delete_inactive=True),
        revoke("aws_check", "aws", check=True, key_id="{{ aws_issue_room.key_id }}"),
        revoke("aws_revoke", "aws", key_id=aws_k1["key_id"], secret=aws_k1["secret"], prove_dead=True),
        revoke("aws_again", "aws", key_id=aws_k1["key_id"]),
        revoke("pg_check_old", "pg", check=True, secret=old_pw),
        revoke("pg_revoke_old", "pg", secret=old_pw, prove_dead=True),
        revoke("pg_refuse_current", "pg", key_id=r["issue_pg"]["key_id"], secret=pg_new),
        revoke("pg_force", "pg", key_id=r["issue_pg"]["key_id"], secret=pg_new, force=True, prove_dead=True),
        revoke("pg_again", "pg", key_id=r["issue_pg"]["key_id"], secret=pg_new, force=True),
        revoke("pg_rollback", "pg", key_id=r["issue_pg"]["key_id"], secret=pg_new, restore_secret=old_pw,
               prove_dead=True),
        revoke("pg_rollback_again", "pg", key_id=r["issue_pg"]["key_id"], secret=pg_new, restore_secret=old_pw),
        revoke("vault_check", "vault", check=True, key_id=b_serial),
        revoke("vault_revoke", "vault", key_id=a_serial),
        revoke("vault_again", "vault", key_id=a_serial),
        revoke("gen_revoke", "gen", key_id=r["issue_gen"]["key_id"]),
    ], env)
    sc.planted["aws_k2"] = sc.results["aws_issue_room"].get("secret")
    sc.seen["after_revoke"] = dict(
        rest_test=provider.test_key(rest_secret),
        rest_key=provider.keys().get(rest_id),
        rest_deletes=[q["status"] for q in provider.requests()[mark:]
                      if q["method"] == "DELETE" and q["key_id"] == rest_id],
        aws_keys={k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]},
        pg_new_login=postgres.psql("select 1", user=role, password=pg_new).returncode,
        pg_old_login=postgres.psql("select 1", user=role, password=old_pw).returncode,
        vault_a=vault.secrets.pki.read_certificate(a_serial, mount_point="pki")["data"],
        vault_b=vault.secrets.pki.read_certificate(b_serial, mount_point="pki")["data"],
        crl=vault.secrets.pki.read_crl(mount_point="pki"),
    )
    return sc


def ok(result, changed):
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is changed, result
    return result


def failed(result, *texts):
    assert result.get("failed"), result
    for text in texts:
        assert text in result["msg"], result["msg"]
    return result["msg"]


# --- check mode -------------------------------------------------------------------------------------
def test_check_mode_creates_nothing(scenario):
    r, seen = scenario.results, scenario.seen["after_check"]
    for kind in scenario.issuers:
        res = ok(r["check_" + kind], True)
        assert res["secret"] is None and res["key_id"] is None and res["kind"] == scenario.issuers[kind]["kind"]
    assert seen["provider_keys"] and seen["provider_requests"] == []   # not a single call to the provider
    assert seen["aws_keys"] == [scenario.k0["AccessKeyId"]]
    assert seen["pg_old_login"] == 0                                     # the old password still works
    assert seen["certs"]


def test_check_mode_still_validates(scenario):
    failed(scenario.results["check_bad_jmespath"], "credential 'it-rest'", "issuer.create.secret_path",
           "JMESPath", "preflight")


# --- rest ---------------------------------------------------------------------------------------------
def test_rest_issue(scenario):
    res = ok(scenario.results["issue_rest"], True)
    seen = scenario.seen["after_issue"]
    assert res["secret"].startswith("sk_live_") and res["key_id"].startswith("key_")
    assert res["fingerprint"] == hashlib.sha256(res["secret"].encode()).hexdigest()[:12]
    assert seen["rest_test"] == 200 and seen["rest_key"]["status"] == "active"
    # the injected 429 (Retry-After: 1) and 503 were retried, then the key was created
    assert seen["rest_creates"][:3] == [429, 503, 201]


def test_rest_extraction_error_names_field_not_body(scenario):
    msg = failed(scenario.results["issue_rest_bad_path"], "credential 'it-rest'", "step issue",
                 "issuer.create.secret_path 'data.key' found nothing", "api_key", "revoke it")
    assert "sk_live_" not in msg


def test_rest_revoke(scenario):
    r, seen = scenario.results, scenario.seen["after_revoke"]
    guard = failed(r["rest_guard"], "credential 'it-rest'", "127.0.0.1", "Nothing was revoked")
    assert "force_revoke" in guard
    check = ok(r["rest_check"], True)
    assert check["revoked"] is False
    res = ok(r["rest_revoke"], True)
    assert res["revoked"] is True and res["proven_dead"] is True and res["usage"] == []
    again = ok(r["rest_again"], False)
    assert again["revoked"] is True and again["proven_dead"] is True
    assert seen["rest_test"] == 401 and seen["rest_key"]["status"] == "revoked"
    # neither the guard nor check mode deleted anything: one real DELETE, then the re-run's 404
    assert seen["rest_deletes"] == [204, 404]


# --- aws_iam ---------------------------------------------------------------------------------------------
def test_aws_issue_and_two_key_limit(scenario):
    r, seen = scenario.results, scenario.seen["after_issue"]
    res = ok(r["issue_aws"], True)
    k0 = scenario.k0["AccessKeyId"]
    assert res["key_id"].startswith("AKIA") and res["info"]["user_name"] == scenario.user
    assert res["info"]["accepted_after_seconds"] is not None
    assert seen["aws_keys"] == {k0: "Active", res["key_id"]: "Active"}
    failed(r["issue_aws_third"], "credential 'it-aws'", "step issue", "already has 2 access keys",
           "at most 2 per user", k0, res["key_id"], "delete_inactive", "never deleted")


def test_aws_delete_inactive_and_revoke(scenario):
    r, seen = scenario.results, scenario.seen["after_revoke"]
    k0, k1 = scenario.k0["AccessKeyId"], r["issue_aws"]["key_id"]
    room = ok(r["aws_issue_room"], True)
    assert room["info"]["deleted_inactive_key_id"] == k0
    check = ok(r["aws_check"], True)
    assert check["revoked"] is False
    res = ok(r["aws_revoke"], True)
    assert res["proven_dead"] is True
    ok(r["aws_again"], False)
    # k0 (inactive) made room, k1 revoked, the new key untouched by the check-mode revoke
    assert seen["aws_keys"] == {room["key_id"]: "Active"}
    assert k1 not in seen["aws_keys"]


# --- postgres ------------------------------------------------------------------------------------------
def test_postgres_issue(scenario):
    res = ok(scenario.results["issue_pg"], True)
    seen = scenario.seen["after_issue"]
    assert res["key_id"].startswith(scenario.role + "@") and len(res["secret"]) == 32
    assert res["info"]["password_encryption"] == "SCRAM-SHA-256"
    assert seen["pg_new_login"].returncode == 0 and seen["pg_new_login"].stdout.strip() == scenario.role
    assert seen["pg_old_login"] != 0
    assert 29 * 86400 < float(seen["pg_valid_until"]) <= 30 * 86400


def test_postgres_revoke(scenario):
    r, seen = scenario.results, scenario.seen["after_revoke"]
    assert ok(r["pg_check_old"], False)["revoked"] is True
    res = ok(r["pg_revoke_old"], False)
    assert res["revoked"] is True and res["proven_dead"] is True
    failed(r["pg_refuse_current"], "credential 'it-pg'", "step revoke", "still logs in",
           "current password", "force")
    forced = ok(r["pg_force"], True)
    assert forced["forced"] is True and forced["proven_dead"] is True
    ok(r["pg_again"], False)
    # rollback: the previous password is set again, which ends the new one
    rollback = ok(r["pg_rollback"], True)
    assert rollback["restored"] is True and rollback["proven_dead"] is True
    assert ok(r["pg_rollback_again"], False)["restored"] is False
    assert seen["pg_new_login"] != 0 and seen["pg_old_login"] == 0


# --- vault_pki ------------------------------------------------------------------------------------------
def test_vault_issue(scenario):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    res = ok(scenario.results["issue_vault_a"], True)
    info, seen = res["info"], scenario.seen["after_issue"]
    assert res["key_id"] == info["serial"]
    assert seen["vault_a"]["certificate"].strip() == info["certificate"].strip()
    assert seen["vault_a"]["revocation_time"] == 0
    cert = x509.load_pem_x509_certificate(info["certificate"].encode())
    key = serialization.load_pem_private_key(res["secret"].encode(), password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == scenario.cn
    assert info["not_after"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 3500 < lifetime.total_seconds() <= 3700 and info["issuing_ca"].startswith("-----BEGIN CERTIFICATE")
    assert "PRIVATE KEY" not in json.dumps(info)


def test_vault_revoke(scenario):
    from cryptography import x509
    r, seen = scenario.results, scenario.seen["after_revoke"]
    assert ok(r["vault_check"], True)["revoked"] is False
    ok(r["vault_revoke"], True)
    ok(r["vault_again"], False)
    assert seen["vault_a"]["revocation_time"] > 0
    assert seen["vault_b"]["revocation_time"] == 0      # check mode revoked nothing
    crl = x509.load_pem_x509_crl(seen["crl"].encode())
    serial = int(r["issue_vault_a"]["key_id"].replace(":", ""), 16)
    assert crl.get_revoked_certificate_by_serial_number(serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(int(r["issue_vault_b"]["key_id"].replace(":", ""), 16)) is None


# --- generated -----------------------------------------------------------------------------------------
def test_generated(scenario):
    res = ok(scenario.results["issue_gen"], True)
    assert re.fullmatch(r"whsec_[0-9a-f]{40}", res["secret"])
    assert res["key_id"] == res["fingerprint"] == hashlib.sha256(res["secret"].encode()).hexdigest()[:12]
    assert res["has_ids"] is False and res["can_revoke"] is False and res["info"]["entropy_bits"] == 160
    gone = ok(scenario.results["gen_revoke"], False)
    assert gone["revoked"] is False


# --- secrets never leak -----------------------------------------------------------------------------------
def test_no_secret_in_any_output(scenario):
    planted = {name: value for name, value in scenario.planted.items() if value}
    assert {"admin_token", "pg_admin", "vault_token", "rest", "aws_k1", "aws_k2", "pg_new", "pg_old",
            "gen", "issue_vault_a_key"} <= set(planted)
    for proc in scenario.procs:
        assert "-vvv" in proc.args
        assert "ESTABLISH LOCAL CONNECTION" in proc.stdout   # it really was -vvv
        output = proc.stdout + proc.stderr
        for name, value in planted.items():
            assert value not in output, "%s leaked into the output" % name
    for task_id, result in scenario.results.items():
        visible = dict(result)
        visible.pop("secret", None)  # the one documented place: the task must be no_log
        text = json.dumps(visible)
        for name, value in planted.items():
            assert value not in text, "%s leaked into %s" % (name, task_id)


def test_aws_usage_and_deactivate(moto, monkeypatch):
    """The issuer class in-process (no playbook): GetAccessKeyLastUsed as usage, and
    revoke_mode deactivate, checked with boto3."""
    from ansible_collections.credops.rotation.plugins.module_utils._issuers.registry import get_issuer
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    iam = moto.client("iam")
    user = "credops-usage-" + secrets.token_hex(3)
    iam.create_user(UserName=user)
    issuer = get_issuer(dict(kind="aws_iam", user_name=user, endpoint_url=moto.endpoint_url,
                             revoke_mode="deactivate", wait_timeout=10), "it-aws-usage")
    new = issuer.create()
    since = now_iso()
    time.sleep(1.1)  # LastUsedDate has second precision
    assert issuer.usage(new["id"], since) == []   # the STS acceptance check was before `since`
    import boto3
    boto3.client("sts", endpoint_url=moto.endpoint_url, region_name=moto.region, aws_access_key_id=new["id"],
                 aws_secret_access_key=new["secret"]).get_caller_identity()
    uses = issuer.usage(new["id"], since)
    assert len(uses) == 1 and uses[0]["source"] == "sts/" + moto.region and uses[0]["time"] >= since[:19]
    assert issuer.exists(new["id"]) is True
    assert issuer.revoke(new["id"]) is True and issuer.revoke(new["id"]) is False
    assert [k["Status"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]] == ["Inactive"]
    assert issuer.exists(new["id"]) is False
