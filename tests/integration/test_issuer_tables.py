"""The issuers' decision tables against the real services, in-process (no playbook, no systemd
host): aws_iam's two-key logic against the lab's moto server, postgres's password shape, revoke
refusals and login classification against the lab's real PostgreSQL.

Each case sets up its state with an independent client (boto3, psql), runs the issuer class,
and checks what really happened with that client again.
"""
import re
import secrets
import socket

import boto3
import pytest

from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError
from ansible_collections.credops.rotation.plugins.module_utils._time import format_time as utc_iso
from ansible_collections.credops.rotation.plugins.module_utils._issuers.aws_iam import AwsIamIssuer
from ansible_collections.credops.rotation.plugins.module_utils._issuers.postgres import (
    PASSWORD_ALPHABET, PostgresIssuer)
from tests.lab import _proc

pytestmark = pytest.mark.lab

SECRET = "sk_live_TABLE-TEST-SECRET-0123456789"


# --- aws_iam: the two-key logic, against moto ------------------------------------------------
def key(name, status, day):
    """A key of the table: its name in the case, its status, and its age (a higher day is newer)."""
    return dict(name=name, status=status, day=day)


@pytest.fixture
def iam_user(moto, monkeypatch):
    """Builds a fresh IAM user holding the table's keys; returns (issuer, user name, {name: key id})."""
    iam = moto.client("iam")

    def build(keys, **config):
        user = "credops-table-" + secrets.token_hex(4)
        iam.create_user(UserName=user)
        ids = {}
        # created oldest first, so IAM's own CreateDate orders them as the table's days do
        for item in sorted(keys, key=lambda k: k["day"]):
            ids[item["name"]] = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
            if item["status"] != "Active":
                iam.update_access_key(UserName=user, AccessKeyId=ids[item["name"]], Status=item["status"])
        issuer = AwsIamIssuer(dict(dict(user_name=user, wait_timeout=0, endpoint_url=moto.endpoint_url,
                                        region=moto.region, access_key=moto.access_key, secret_key=moto.secret_key),
                                   **config), "integration-svc")
        listed = [ids[item["name"]] for item in keys]
        if [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]] != listed:
            # moto lists a user's keys in creation order; AWS promises no order. A case that lists
            # the newer key first keeps moto's answer but in the table's order.
            real_keys = issuer._keys

            def in_table_order(step):
                return sorted(real_keys(step), key=lambda k: listed.index(k["AccessKeyId"]))
            monkeypatch.setattr(issuer, "_keys", in_table_order)
        return issuer, user, ids
    return build


def iam_keys(moto, user):
    """{key id: (status, CreateDate)} as IAM lists them now."""
    return dict((k["AccessKeyId"], (k["Status"], k["CreateDate"]))
                for k in moto.client("iam").list_access_keys(UserName=user)["AccessKeyMetadata"])


def caller_arn(moto, key_id, secret):
    return boto3.client("sts", endpoint_url=moto.endpoint_url, region_name=moto.region, aws_access_key_id=key_id,
                        aws_secret_access_key=secret).get_caller_identity()["Arn"]


@pytest.mark.parametrize("keys, config, deleted", [
    ([], {}, []),
    ([key("AKIA1", "Active", 1)], {}, []),
    ([key("AKIA1", "Active", 1), key("AKIA2", "Inactive", 2)], {"delete_inactive": True}, ["AKIA2"]),
    ([key("AKIA1", "Inactive", 3), key("AKIA2", "Inactive", 2)], {"delete_inactive": True}, ["AKIA2"]),
])
def test_aws_create_makes_room_only_from_inactive(moto, iam_user, keys, config, deleted):
    issuer, user, ids = iam_user(keys, **config)
    before = iam_keys(moto, user)
    out = issuer.create()
    after = iam_keys(moto, user)
    assert out["id"] not in before and after[out["id"]][0] == "Active"
    assert caller_arn(moto, out["id"], out["secret"]).endswith(":user/" + user)  # the secret IAM issued
    assert sorted(set(before) - set(after)) == sorted(ids[name] for name in deleted)
    assert out["info"].get("deleted_inactive_key_id") == (ids[deleted[0]] if deleted else None)
    assert out["info"]["create_date"] == utc_iso(after[out["id"]][1])


@pytest.mark.parametrize("keys, config, hint", [
    ([key("AKIA1", "Active", 1), key("AKIA2", "Active", 2)], {}, "delete_inactive: true"),
    ([key("AKIA1", "Active", 1), key("AKIA2", "Active", 2)], {"delete_inactive": True}, "never deleted"),
    ([key("AKIA1", "Active", 1), key("AKIA2", "Inactive", 2)], {}, "one key is inactive"),
])
def test_aws_two_key_limit(moto, iam_user, keys, config, hint):
    issuer, user, ids = iam_user(keys, **config)
    before = iam_keys(moto, user)
    with pytest.raises(RotationError) as err:
        issuer.create()
    text = str(err.value)
    assert "at most 2 per user" in text and ids["AKIA1"] in text and ids["AKIA2"] in text
    assert hint in text and "credential 'integration-svc'" in text and "step issue" in text
    assert iam_keys(moto, user) == before  # nothing deleted, nothing created


# --- postgres: against the lab's PostgreSQL -------------------------------------------------------
def ident():
    return "tbl_" + secrets.token_hex(4)


def psql_ok(postgres, sql):
    res = postgres.psql(sql)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


def pg_issuer(postgres, role, **config):
    base = dict(host=postgres.host, port=postgres.port, db=postgres.dbname, admin_user=postgres.admin_user,
                admin_password=postgres.admin_password, role=role)
    base.update(config)
    return PostgresIssuer(base, "orders-db")


def logs_in(postgres, role, password, dbname=None):
    """psql's own login as role: (ok, stderr)."""
    res = postgres.psql("select current_user", user=role, password=password, dbname=dbname)
    return res.returncode == 0, res.stderr


def test_postgres_password_shape(postgres):
    role = ident()
    psql_ok(postgres, "CREATE ROLE %s LOGIN PASSWORD '%s'" % (role, SECRET))
    out = pg_issuer(postgres, role).create()
    assert len(out["secret"]) == 32
    assert set(out["secret"]) <= set(PASSWORD_ALPHABET)
    assert re.match(r"^%s@\d{8}T\d{6}\.\d{6}Z$" % role, out["id"])
    assert out["info"]["password_encryption"] == "SCRAM-SHA-256"
    # the password set is the one returned, stored as a SCRAM verifier
    assert logs_in(postgres, role, out["secret"])[0] is True
    assert logs_in(postgres, role, SECRET)[0] is False
    assert psql_ok(postgres, "SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % role).startswith(
        "SCRAM-SHA-256$")


@pytest.mark.parametrize("call, text", [
    (lambda i, role: i.revoke("%s@20240101T000000.000000Z" % role), "needs the password itself"),
    (lambda i, role: i.revoke("other@20240101T000000.000000Z", secret="x"), "belongs to another role"),
])
def test_postgres_revoke_needs_secret_of_this_role(postgres, call, text):
    role = ident()
    psql_ok(postgres, "CREATE ROLE %s LOGIN PASSWORD '%s'" % (role, SECRET))
    issuer = pg_issuer(postgres, role)
    with pytest.raises(RotationError) as err:
        call(issuer, role)
    assert text in str(err.value)
    assert logs_in(postgres, role, SECRET)[0] is True  # the role's password was not touched


@pytest.mark.parametrize("case, fragment, expected", [
    ("wrong password", "password authentication failed for user", False),
    ("nologin role", "is not permitted to log in", False),
    ("no connect privilege", "permission denied for database", True),
    ("no such database", "does not exist", True),
    ("nothing listening", "Connection refused", RotationError),
])
def test_postgres_login_classification(postgres, case, fragment, expected):
    role, dbname, port = ident(), None, postgres.port
    login = "NOLOGIN" if case == "nologin role" else "LOGIN"
    password = "another-" + SECRET if case == "wrong password" else SECRET
    psql_ok(postgres, "CREATE ROLE %s %s PASSWORD '%s'" % (role, login, password))
    if case == "no connect privilege":
        dbname = ident()
        psql_ok(postgres, "CREATE DATABASE %s" % dbname)
        psql_ok(postgres, "REVOKE CONNECT ON DATABASE %s FROM PUBLIC" % dbname)
    elif case == "no such database":
        dbname = ident()
    elif case == "nothing listening":
        port = _proc.free_port()
    # the independent client, with the same password, meets the same case
    if port == postgres.port:
        res = postgres.psql("select 1", user=role, password=SECRET, dbname=dbname)
        assert res.returncode != 0 and fragment in res.stderr
    else:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((postgres.host, port), timeout=5).close()
    issuer = pg_issuer(postgres, role, db=dbname or postgres.dbname, port=port, timeout=5)
    if expected is RotationError:
        with pytest.raises(RotationError) as err:
            issuer.test(SECRET)
        assert fragment in str(err.value) and SECRET not in str(err.value)
    else:
        assert issuer.test(SECRET) is expected
