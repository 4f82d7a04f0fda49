# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kind: postgres: a login role's password, set over a real connection.

The procedure is the single-role one: ``create`` sets the role's new password at once, so
from then on the old password no longer logs in. The password never travels in clear:
it is hashed here with libpq's PQencryptPasswordConn (SCRAM-SHA-256, or whatever the
server's password_encryption says) and only the verifier is sent in ``ALTER ROLE``, so
even a server that logs every statement never sees it.

``revoke`` therefore has nothing left to do in a normal rotation: it *confirms*, by a real
login with the old password, that it is dead (not changed). If the old password still
logs in, it is the role's current one again (the rotation was rolled back, or never
applied); revoking it would lock every consumer out, so revoke refuses unless ``force``
(an emergency), which sets a random password nobody knows.

A rollback must give the role its previous password back: ``restore(previous)`` does
(revoke_key's ``restore_secret``); it is a no-op for kinds whose old value stays valid.

The id of a value is ``<role>@<UTC time it was set>``; the role has no ids of its own.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import secrets
import string
import traceback
from datetime import datetime, timedelta, timezone

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.credops.rotation.plugins.module_utils._issuers._base import Issuer, utc_iso

try:
    import psycopg
    from psycopg import sql
    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None
except ImportError:
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = traceback.format_exc()

ARGSPEC = dict(
    host=dict(type="str"),
    port=dict(type="int"),
    db=dict(type="str"),
    admin_user=dict(type="str"),
    admin_password=dict(type="str", no_log=True),
    role=dict(type="str"),
    valid_until_days=dict(type="int"),
    sslmode=dict(type="str", choices=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
    length=dict(type="int"),
)

PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_"

# Login failures that mean "this password does not (or no longer) log in".
_REJECTED = ("password authentication failed", "is not permitted to log in", "has expired",
             "no password was provided")
# Failures after a successful authentication: the password itself was accepted.
_AUTHENTICATED = re.compile(r'permission denied for database|database ".*" does not exist|'
                            r'too many connections for role')


class PostgresIssuer(Issuer):
    kind = "postgres"
    ARGSPEC = ARGSPEC
    #: revoke works from the old password itself (``secret``); the key id is informative
    revoke_needs_id = False

    def __init__(self, config, credential):
        super(PostgresIssuer, self).__init__(config, credential)
        if not HAS_PSYCOPG:
            raise self.error(missing_required_lib("psycopg"), step="preflight",
                             fix="install psycopg 3 where the module runs (pip install 'psycopg[binary]').")
        self.role = self.require("role")
        self.host = self.config.get("host") or os.environ.get("PGHOST") or "localhost"
        self.port = int(self.config.get("port") or os.environ.get("PGPORT") or 5432)
        self.db = self.config.get("db") or os.environ.get("PGDATABASE") or "postgres"
        self.admin_user = self.config.get("admin_user") or os.environ.get("PGUSER") or "postgres"
        self.admin_password = self.config.get("admin_password") or os.environ.get("PGPASSWORD")
        self.length = int(self.config.get("length") or 32)
        if self.length < 16:
            raise self.error("issuer.length is %d; a database password needs at least 16 characters."
                             % self.length, step="preflight", fix="raise issuer.length (default 32).")
        self.valid_until_days = self.config.get("valid_until_days")
        self._secrets = [self.admin_password]

    def _where(self):
        return "%s:%d/%s" % (self.host, self.port, self.db)

    def _connect(self, user, password):
        kwargs = dict(host=self.host, port=self.port, dbname=self.db, user=user,
                      connect_timeout=max(1, int(float(self.config.get("timeout") or 10))),
                      application_name="credops.rotation", autocommit=True)
        if password is not None:
            kwargs["password"] = password
        if self.config.get("sslmode"):
            kwargs["sslmode"] = self.config["sslmode"]
        if self.config.get("ca_path"):
            kwargs["sslrootcert"] = self.config["ca_path"]
        return psycopg.connect(**kwargs)

    def _admin(self, step):
        try:
            return self._connect(self.admin_user, self.admin_password)
        except psycopg.Error as exc:
            raise self.error("could not connect to PostgreSQL at %s as '%s': %s" % (
                self._where(), self.admin_user, _first_line(exc)), step=step, secrets=self._secrets,
                fix="check issuer.host, port, db, admin_user and admin_password (or PGPASSWORD), "
                    "pg_hba.conf and issuer.sslmode.")

    def _set_password(self, conn, password, step, valid_until=None):
        """ALTER ROLE ... PASSWORD '<verifier>'; the clear password is never sent."""
        row = conn.execute("SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = %s",
                           (self.role,)).fetchone()
        if row is None:
            raise self.error("role '%s' does not exist at %s." % (self.role, self._where()), step=step,
                             fix="check issuer.role; the rotation changes passwords, it does not create roles.")
        if not row[0]:
            raise self.error("role '%s' at %s cannot log in (NOLOGIN), so it has no password to rotate."
                             % (self.role, self._where()), step=step,
                             fix="check issuer.role: it must be the login role the consumers connect as.")
        verifier = conn.pgconn.encrypt_password(password.encode("utf-8"), self.role.encode("utf-8"), None)
        verifier = verifier.decode("ascii")
        query = sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(sql.Identifier(self.role), sql.Literal(verifier))
        if valid_until is not None:
            query = query + sql.SQL(" VALID UNTIL {}").format(sql.Literal(utc_iso(valid_until)))
        try:
            conn.execute(query)
        except psycopg.Error as exc:
            fix = "see the PostgreSQL error above."
            if getattr(exc, "sqlstate", None) == "42501":
                fix = ("issuer.admin_user needs CREATEROLE (and, on PostgreSQL 16 and later, ADMIN OPTION on "
                       "role '%s') or superuser." % self.role)
            raise self.error("could not set the password of role '%s': %s" % (self.role, _first_line(exc)),
                             step=step, fix=fix, secrets=self._secrets + [password, verifier])
        return verifier.split("$", 1)[0].split(":", 1)[0] if "$" in verifier else verifier[:3]

    def _check_key_id(self, key_id, step):
        if key_id and "@" in key_id and key_id.rsplit("@", 1)[0] != self.role:
            raise self.error("key id '%s' belongs to another role than issuer.role '%s'." % (key_id, self.role),
                             step=step, fix="pass the key id issued for this credential.")

    # --- the interface ---------------------------------------------------------------------
    def create(self):
        password = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(self.length))
        now = datetime.now(timezone.utc)
        valid_until = None
        if self.valid_until_days:
            valid_until = now + timedelta(days=int(self.valid_until_days))
        with self._admin("issue") as conn:
            algorithm = self._set_password(conn, password, "issue", valid_until)
        return dict(id="%s@%s" % (self.role, now.strftime("%Y%m%dT%H%M%S.%fZ")), secret=password,
                    info=dict(role=self.role, server=self._where(), valid_until=utc_iso(valid_until),
                              password_encryption=algorithm))

    def revoke(self, key_id, secret=None, force=False):
        self._check_key_id(key_id, "revoke")
        if secret is None:
            raise self.error("revoking a postgres password needs the password itself (secret), to confirm by a "
                             "login that it no longer works.", step="revoke",
                             fix="pass secret: the previous value, which the store keeps while a rotation is in flight.")
        if not self._logs_in(secret, "revoke"):
            return False
        if not force:
            raise self.error("the password being revoked (key id %s) still logs in as role '%s': it is the role's "
                             "current password (the rotation was rolled back or never applied), and revoking it "
                             "would lock every consumer out." % (key_id, self.role), step="revoke",
                             secrets=[secret],
                             fix="issue a new password first and revoke this one once every consumer uses the new "
                                 "one; in an emergency, pass force: true to invalidate it now.")
        unusable = secrets.token_urlsafe(48)
        with self._admin("revoke") as conn:
            self._set_password(conn, unusable, "revoke")
        return True

    def restore(self, secret):
        """Rollback: set the previous password again (which also ends the new one)."""
        if not secret:
            raise self.error("restoring needs the previous password.", step="rollback",
                             fix="pass restore_secret: the previous value the store kept.")
        if self._logs_in(secret, "rollback"):
            return False
        with self._admin("rollback") as conn:
            self._set_password(conn, secret, "rollback")
        return True

    def exists(self, key_id):
        return None

    def test(self, secret, key_id=None):
        self._check_key_id(key_id, "test")
        return self._logs_in(secret, "test")

    def _logs_in(self, secret, step):
        try:
            conn = self._connect(self.role, secret)
        except psycopg.Error as exc:
            text = str(exc)
            if any(marker in text for marker in _REJECTED):
                return False
            if _AUTHENTICATED.search(text):
                return True
            raise self.error("could not try a login as role '%s' at %s: %s" % (
                self.role, self._where(), _first_line(exc)), step=step, secrets=self._secrets + [secret],
                fix="check issuer.host, port, db, pg_hba.conf and issuer.sslmode.")
        conn.close()
        return True


def _first_line(exc):
    """psycopg's message without the libpq detail lines; server messages carry no values."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__
