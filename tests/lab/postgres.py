"""A real PostgreSQL server from Debian's packages, initdb'd into a temp dir, 127.0.0.1 only."""
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.lab import _proc


def pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run ./scripts/setup.sh (apt-get install postgresql)")
    return Path(found[-1]).parent


class Postgres:
    admin_user = "postgres"
    admin_password = "lab-admin-pw"
    host = "127.0.0.1"
    dbname = "postgres"

    def __init__(self, workdir=None, port=None):
        self.port = port or _proc.free_port()
        # The data dir must be reachable by the postgres user: not under a 0700 pytest tmp.
        self.datadir = Path(tempfile.mkdtemp(prefix="credops-pg-"))
        self.proc = None

    def dsn(self, user=None, password=None, dbname=None):
        return "host=%s port=%d dbname=%s user=%s password=%s connect_timeout=5" % (
            self.host, self.port, dbname or self.dbname, user or self.admin_user,
            password if password is not None else self.admin_password)

    def _as_postgres(self, argv, **kw):
        pw = pwd.getpwnam("postgres")

        def demote():
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
        return subprocess.run(argv, preexec_fn=demote, check=True, capture_output=True,
                              text=True, **kw)

    def start(self, timeout=30):
        bindir = pg_bindir()
        pw = pwd.getpwnam("postgres")
        os.chmod(self.datadir, 0o755)
        data = self.datadir / "data"
        data.mkdir()
        pwfile = self.datadir / "pw"
        pwfile.write_text(self.admin_password + "\n")
        for p in (self.datadir, data, pwfile):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        os.chmod(data, 0o700)
        self._as_postgres([str(bindir / "initdb"), "-D", str(data), "-U", self.admin_user,
                           "--pwfile=" + str(pwfile), "--auth=scram-sha-256", "-E", "UTF8"],
                          timeout=120)
        pwfile.unlink()
        self.proc = _proc.start(
            [str(bindir / "postgres"), "-D", str(data), "-h", self.host, "-p", str(self.port),
             "-k", str(self.datadir), "-c", "fsync=off", "-c", "log_connections=on"],
            self.datadir / "postgres.log", user="postgres")
        _proc.wait_until(self._ready, timeout, what="PostgreSQL on port %d" % self.port)
        return self

    def _ready(self):
        import psycopg
        with psycopg.connect(self.dsn()) as conn:
            return conn.execute("select 1").fetchone()[0] == 1

    def psql(self, sql, user=None, password=None, dbname=None):
        """Run SQL with the real psql client; returns CompletedProcess (not raising)."""
        env = dict(os.environ, PGPASSWORD=password if password is not None else self.admin_password,
                   PGCONNECT_TIMEOUT="5")
        return subprocess.run(["psql", "-h", self.host, "-p", str(self.port), "-U", user or self.admin_user,
                               "-d", dbname or self.dbname, "-tAc", sql, "-v", "ON_ERROR_STOP=1"],
                              env=env, capture_output=True, text=True, timeout=30, check=False)

    def stop(self):
        _proc.stop(self.proc, timeout=20)
        self.proc = None
        shutil.rmtree(self.datadir, ignore_errors=True)
