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

Alternating roles (zero downtime), ``roles: [app_a, app_b]`` instead of ``role``: two login
roles with the same grants (best: both members of one NOLOGIN group role that owns the
objects and holds the privileges). One is in use, the other is *idle*: NOLOGIN, with a
password nobody knows. ``create`` checks both still have the same grants, gives the idle
one a new password and LOGIN, and returns it as the new value; its id is the role's name,
so consumers get the user name through the id (a systemd consumer's ``id_env_var``). The
role in use keeps working untouched until every consumer moved over. ``revoke`` makes the
old role idle again (a random password, NOLOGIN, its remaining sessions terminated) and
refuses while it is the only role that can log in, unless ``force``. ``usage`` reports the
old role's open sessions (pg_stat_activity), so the revoke guard catches a consumer the
dependency map does not list. A rollback has nothing to restore: the old role was never
changed; revoking the new one makes it idle again. After an emergency revoked the role in
use, both are idle and ``create`` takes the first one listed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import secrets
import string
from datetime import timedelta

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.credops.rotation.plugins.module_utils._lazy import LazyModule
from ansible_collections.credops.rotation.plugins.module_utils import _time
from ansible_collections.credops.rotation.plugins.module_utils._issuers._base import Issuer

psycopg = LazyModule("psycopg")
sql = LazyModule("psycopg.sql")

ARGSPEC = dict(
    host=dict(type="str"),
    port=dict(type="int"),
    db=dict(type="str"),
    admin_user=dict(type="str"),
    admin_password=dict(type="str", no_log=True),
    role=dict(type="str"),
    roles=dict(type="list", elements="str"),
    valid_until_days=dict(type="int"),
    sslmode=dict(type="str", choices=["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]),
    length=dict(type="int"),
)

# The longest role name PostgreSQL keeps (NAMEDATALEN - 1 bytes).
_ROLE_NAME_MAX = 63

PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_"

# Login failures that mean "this password does not (or no longer) log in".
_REJECTED = ("password authentication failed", "is not permitted to log in", "has expired",
             "no password was provided")
# Failures after a successful authentication: the password itself was accepted.
_AUTHENTICATED = re.compile(r'permission denied for database|database ".*" does not exist|'
                            r'too many connections for role')

# Alternating roles: what the two roles must share, so consumers keep their rights when they
# move from one to the other (the role attributes that grant rights, memberships, role
# settings, and the privileges and ownerships visible from issuer.db).
_ROLE_ATTRIBUTES = ("rolsuper", "rolinherit", "rolcreaterole", "rolcreatedb", "rolreplication",
                    "rolbypassrls")
_GRANTS_SQL = """
SELECT 'member of ' || g.rolname
  FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
 WHERE m.member = %(oid)s
UNION ALL
SELECT 'setting ' || coalesce((SELECT datname FROM pg_catalog.pg_database WHERE oid = s.setdatabase), '*')
       || ' ' || c
  FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c
 WHERE s.setrole = %(oid)s
UNION ALL
SELECT 'database ' || quote_ident(d.datname) || ' ' || a.privilege_type
  FROM pg_catalog.pg_database d, aclexplode(d.datacl) a
 WHERE a.grantee = %(oid)s
UNION ALL
SELECT 'schema ' || quote_ident(n.nspname) || ' ' || a.privilege_type
  FROM pg_catalog.pg_namespace n, aclexplode(n.nspacl) a
 WHERE a.grantee = %(oid)s
UNION ALL
SELECT 'relation ' || c.oid::regclass::text || ' ' || a.privilege_type
  FROM pg_catalog.pg_class c, aclexplode(c.relacl) a
 WHERE a.grantee = %(oid)s
UNION ALL
SELECT 'owner of ' || c.oid::regclass::text
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relowner = %(oid)s AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%%'
UNION ALL
SELECT 'owner of schema ' || quote_ident(nspname)
  FROM pg_catalog.pg_namespace WHERE nspowner = %(oid)s
"""


class PostgresIssuer(Issuer):
    kind = "postgres"
    ARGSPEC = ARGSPEC
    TYPES = ("database",)
    REQUIRED = ("kind", "host", "db", "admin_user")
    #: the single-role or the alternating procedure
    REQUIRED_ONE_OF = (("role",), ("roles",))
    DEFAULTS = dict(port=5432)

    @classmethod
    def preflight(cls, report, path, block, check):
        for field, example in (("host", "db.example.org"), ("db", "postgres"), ("admin_user", "rotation_admin"),
                               ("role", "app_user")):
            if field == "role" and "roles" in block:
                continue  # the alternating procedure: see preflight_roles
            check.required_str(report, "%s.%s" % (path, field), block.get(field),
                               "set it, e.g. `%s: %s`" % (field, example))
        port = block.get("port")
        if port is not None and not (check.is_int(port) and 1 <= port <= 65535):
            report.error(path + ".port", "%s is not a TCP port" % check.show(port),
                         "write a number from 1 to 65535 (default 5432)")
        sslmode = block.get("sslmode")
        modes = ARGSPEC["sslmode"]["choices"]
        if sslmode is not None and sslmode not in modes:
            report.error(path + ".sslmode", "unknown sslmode %s" % check.show(sslmode), "use one of: " + ", ".join(modes))

    @classmethod
    def key_ids_unfit(cls, block):
        if "roles" not in block:
            return ("the single-role procedure's key ids are '<role>@<time>', not a user name (the consumer's user "
                    "is issuer.role); id_env_var is for alternating roles (issuer.roles)")
        return None

    @classmethod
    def preflight_with_store(cls, report, path, block, store_cls, check):
        """The alternating procedure (``roles``): two distinct role names, and a store whose
        version ids do not derive from the key id (alternating roles reuse their key ids)."""
        if "roles" not in block:
            return
        roles = block.get("roles")
        fix = "name two login roles with the same grants, e.g. `roles: [orders_app_a, orders_app_b]`"
        if "role" in block:
            report.error(path + ".role", "is set together with roles",
                         "give role for the single-role procedure or roles for the alternating one, not both")
        if not isinstance(roles, list) or len(roles) != 2:
            report.error(path + ".roles", "must be a list of exactly two roles, got %s" % check.show(roles), fix)
            return
        for index, role in enumerate(roles):
            if not check.is_str(role) or len(role.encode("utf-8")) > _ROLE_NAME_MAX:
                report.error("%s.roles[%d]" % (path, index), "%s is not a PostgreSQL role name" % check.show(role), fix)
                return
        if roles[0] == roles[1]:
            report.error(path + ".roles", "names %s twice" % check.show(roles[0]), fix)
        if store_cls is not None and store_cls.VERSION_IDS_FROM_KEY_ID:
            report.error(path + ".roles", "alternating roles reuse their key ids (the role names), and store kind "
                         "%s derives each version's id from the key id, so a later rotation would "
                         "collide with an old version" % store_cls.kind,
                         "keep this credential in a vault_kv2 store, or use the single-role procedure (issuer.role)")

    @classmethod
    def replaces_in_place(cls, block):
        # one role: issuing changed the role's password, the previous one no longer logs in
        return "roles" not in block
    #: revoke works from the old password itself (``secret``); the key id is informative
    revoke_needs_id = False

    def __init__(self, config, credential):
        super(PostgresIssuer, self).__init__(config, credential)
        if psycopg.import_error():
            raise self.error(missing_required_lib("psycopg"), step="preflight",
                             fix="install psycopg 3 where the module runs (pip install 'psycopg[binary]').")
        self.roles = self._alternating_roles()
        self.role = None if self.roles else self.require("role")
        if self.roles:
            # revoke acts on the role named by the key id; the password is not needed
            self.revoke_needs_id = True
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

    def _set_password(self, conn, password, step, valid_until=None, role=None, login=None):
        """ALTER ROLE ... PASSWORD '<verifier>'; the clear password is never sent.

        ``role``: default issuer.role. ``login``: also set LOGIN (True) or NOLOGIN (False)
        (alternating roles); None keeps the single-role rule that the role must log in."""
        role = role or self.role
        row = conn.execute("SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = %s",
                           (role,)).fetchone()
        if row is None:
            raise self.error("role '%s' does not exist at %s." % (role, self._where()), step=step,
                             fix="check issuer.role; the rotation changes passwords, it does not create roles.")
        if not row[0] and login is None:
            raise self.error("role '%s' at %s cannot log in (NOLOGIN), so it has no password to rotate."
                             % (role, self._where()), step=step,
                             fix="check issuer.role: it must be the login role the consumers connect as.")
        verifier = conn.pgconn.encrypt_password(password.encode("utf-8"), role.encode("utf-8"), None)
        verifier = verifier.decode("ascii")
        query = sql.SQL("ALTER ROLE {} WITH PASSWORD {}").format(sql.Identifier(role), sql.Literal(verifier))
        if login is not None:
            query = query + sql.SQL(" LOGIN" if login else " NOLOGIN")
        if valid_until is not None:
            query = query + sql.SQL(" VALID UNTIL {}").format(sql.Literal(_time.format_time(valid_until)))
        try:
            conn.execute(query)
        except psycopg.Error as exc:
            fix = "see the PostgreSQL error above."
            if getattr(exc, "sqlstate", None) == "42501":
                fix = ("issuer.admin_user needs CREATEROLE (and, on PostgreSQL 16 and later, ADMIN OPTION on "
                       "role '%s') or superuser." % role)
            raise self.error("could not set the password of role '%s': %s" % (role, _first_line(exc)),
                             step=step, fix=fix, secrets=self._secrets + [password, verifier])
        return verifier.split("$", 1)[0].split(":", 1)[0] if "$" in verifier else verifier[:3]

    def _check_key_id(self, key_id, step):
        if key_id and "@" in key_id and key_id.rsplit("@", 1)[0] != self.role:
            raise self.error("key id '%s' belongs to another role than issuer.role '%s'." % (key_id, self.role),
                             step=step, fix="pass the key id issued for this credential.")

    # --- the interface ---------------------------------------------------------------------
    def create(self):
        if self.roles:
            return self._create_alternating()
        password = self._new_password()
        now = _time.now()
        valid_until = None
        if self.valid_until_days:
            valid_until = now + timedelta(days=int(self.valid_until_days))
        with self._admin("issue") as conn:
            algorithm = self._set_password(conn, password, "issue", valid_until)
        return dict(id="%s@%s" % (self.role, now.strftime("%Y%m%dT%H%M%S.%fZ")), secret=password,
                    info=dict(role=self.role, server=self._where(), valid_until=_time.format_time(valid_until),
                              password_encryption=algorithm))

    def revoke(self, key_id, secret=None, force=False):
        if self.roles:
            return self._revoke_alternating(key_id, force)
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
        if self.roles:
            return False  # the old role was never changed: nothing to restore
        if not secret:
            raise self.error("restoring needs the previous password.", step="rollback",
                             fix="pass restore_secret: the previous value the store kept.")
        if self._logs_in(secret, "rollback"):
            return False
        with self._admin("rollback") as conn:
            self._set_password(conn, secret, "rollback")
        return True

    def exists(self, key_id):
        if self.roles:
            role = self._role_of(key_id, "check")
            with self._admin("check") as conn:
                return bool(self._login_roles(conn, "check")[role])
        return None

    def test(self, secret, key_id=None):
        if self.roles:
            if not key_id:
                return None  # which role the password belongs to is unknown
            return self._logs_in(secret, "test", role=self._role_of(key_id, "test"))
        self._check_key_id(key_id, "test")
        return self._logs_in(secret, "test")

    def usage(self, key_id, since):
        """Alternating roles: the open sessions of the role (each counts as a use now). The
        single-role procedure keeps no usage record (None)."""
        if not self.roles:
            return None
        role = self._role_of(key_id, "usage")
        with self._admin("usage") as conn:
            rows = conn.execute(
                "SELECT host(client_addr), application_name, backend_start FROM pg_catalog.pg_stat_activity "
                "WHERE usename = %s AND pid <> pg_backend_pid()", (role,)).fetchall()
        now = _time.now_iso(fraction=True)
        return [dict(time=now, source="%s (%s, connected since %s)" % (
            addr or "local socket", app or "no application_name", _time.format_time(started)))
            for addr, app, started in rows]

    # --- alternating roles ----------------------------------------------------------------
    def _alternating_roles(self):
        roles = self.config.get("roles")
        if not roles:
            return None
        if self.config.get("role"):
            raise self.error("issuer.role and issuer.roles are both set.", step="preflight",
                             fix="give issuer.role for the single-role procedure, or issuer.roles (two login "
                                 "roles with the same grants) for the alternating one, not both.")
        if (not isinstance(roles, (list, tuple)) or len(roles) != 2
                or not all(isinstance(r, str) and r for r in roles) or roles[0] == roles[1]):
            raise self.error("issuer.roles must name exactly two different roles.", step="preflight",
                             fix="write e.g. `roles: [orders_app_a, orders_app_b]`.")
        return list(roles)

    def _role_of(self, key_id, step):
        if key_id not in self.roles:
            raise self.error("key id '%s' is not one of issuer.roles (%s)." % (key_id, ", ".join(self.roles)),
                             step=step, fix="with alternating roles the key id is the name of the role; pass "
                                            "the key id the store kept for this credential.")
        return key_id

    def _login_roles(self, conn, step):
        """{role: can it log in} for both roles; fails when one does not exist."""
        found = dict(conn.execute("SELECT rolname, rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = ANY(%s)",
                                  (self.roles,)).fetchall())
        missing = [r for r in self.roles if r not in found]
        if missing:
            raise self.error("role(s) %s of issuer.roles do not exist at %s." % (", ".join(missing), self._where()),
                             step=step, fix="create the second role with the same grants as the first, idle: "
                                            "CREATE ROLE %s NOLOGIN IN ROLE <the group role that holds the grants>."
                                            % missing[0])
        return found

    def _grants(self, conn, role):
        row = conn.execute("SELECT oid, %s FROM pg_catalog.pg_roles WHERE rolname = %%s"
                           % ", ".join(_ROLE_ATTRIBUTES), (role,)).fetchone()
        have = set("attribute %s" % name for name, value in zip(_ROLE_ATTRIBUTES, row[1:]) if value)
        have.update(r[0] for r in conn.execute(_GRANTS_SQL, {"oid": row[0]}).fetchall())
        return have

    def _same_grants(self, conn, idle, other, step):
        """Consumers moving from ``other`` to ``idle`` must keep every right they had."""
        idle_has, other_has = self._grants(conn, idle), self._grants(conn, other)
        if idle_has == other_has:
            return

        def listed(items):
            items = sorted(items)
            return ", ".join(items[:6]) + (" and %d more" % (len(items) - 6) if len(items) > 6 else "")
        parts = []
        if other_has - idle_has:
            parts.append("only %s has: %s" % (other, listed(other_has - idle_has)))
        if idle_has - other_has:
            parts.append("only %s has: %s" % (idle, listed(idle_has - other_has)))
        raise self.error("roles %s and %s do not have the same grants (%s); consumers moving to %s would lose or "
                         "gain rights. Nothing was changed." % (other, idle, "; ".join(parts), idle), step=step,
                         fix="grant both roles the same rights, best through one NOLOGIN group role that owns the "
                             "objects (GRANT <group> TO %s, %s; ALTER TABLE ... OWNER TO <group>)." % (other, idle))

    def _new_password(self):
        """A new high-entropy password of ``length`` characters (the secrets module)."""
        return "".join(secrets.choice(PASSWORD_ALPHABET) for _index in range(self.length))

    def _create_alternating(self):
        password = self._new_password()
        now = _time.now()
        valid_until = now + timedelta(days=int(self.valid_until_days)) if self.valid_until_days else None
        with self._admin("issue") as conn:
            login = self._login_roles(conn, "issue")
            if all(login[r] for r in self.roles):
                raise self.error(
                    "roles %s and %s can both log in, so which one is idle is unknown; nothing was changed."
                    % tuple(self.roles), step="issue",
                    fix="the store's key_id names the role in use; make the other one idle (ALTER ROLE <other> "
                        "NOLOGIN) and re-run. (This also happens when a run stopped right after issuing.)")
            idle = [r for r in self.roles if not login[r]][0]
            current = [r for r in self.roles if login[r]]
            other = current[0] if current else [r for r in self.roles if r != idle][0]
            self._same_grants(conn, idle, other, "issue")
            algorithm = self._set_password(conn, password, "issue", valid_until, role=idle, login=True)
        return dict(id=idle, secret=password,
                    info=dict(role=idle, previous_role=current[0] if current else None, procedure="alternating roles",
                              server=self._where(), valid_until=_time.format_time(valid_until),
                              password_encryption=algorithm))

    def _revoke_alternating(self, key_id, force):
        role = self._role_of(key_id, "revoke")
        with self._admin("revoke") as conn:
            login = self._login_roles(conn, "revoke")
            changed = False
            if login[role]:
                if not any(login[r] for r in self.roles if r != role) and not force:
                    raise self.error(
                        "role '%s' is the only one of issuer.roles that can log in: it is the role in use (the "
                        "rotation was rolled back or never applied), and revoking it would lock every consumer out."
                        % role, step="revoke",
                        fix="rotate first (the idle role gets a new password and the consumers move to it), then "
                            "revoke this one; in an emergency, pass force: true to revoke it now.")
                self._set_password(conn, secrets.token_urlsafe(48), "revoke", role=role, login=False)
                changed = True
            try:
                ended = conn.execute("SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM "
                                     "pg_catalog.pg_stat_activity WHERE usename = %s AND pid <> pg_backend_pid()",
                                     (role,)).fetchone()[0]
            except psycopg.Error as exc:
                raise self.error("role '%s' is idle now (NOLOGIN, a new unknown password), but its open sessions "
                                 "could not be ended: %s" % (role, _first_line(exc)), step="revoke",
                                 fix="grant issuer.admin_user pg_signal_backend (GRANT pg_signal_backend TO ...), "
                                     "or end them by hand: SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     "WHERE usename = '%s'." % role)
        return changed or bool(ended)

    def _logs_in(self, secret, step, role=None):
        role = role or self.role
        try:
            conn = self._connect(role, secret)
        except psycopg.Error as exc:
            text = str(exc)
            if any(marker in text for marker in _REJECTED):
                return False
            if _AUTHENTICATED.search(text):
                return True
            raise self.error("could not try a login as role '%s' at %s: %s" % (
                role, self._where(), _first_line(exc)), step=step, secrets=self._secrets + [secret],
                fix="check issuer.host, port, db, pg_hba.conf and issuer.sslmode.")
        conn.close()
        return True


def _first_line(exc):
    """psycopg's message without the libpq detail lines; server messages carry no values."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return " ".join(lines[:2]) if lines else type(exc).__name__
