"""Lab scenarios for database passwords (PostgreSQL) and AWS access keys (IAM + Secrets Manager).

Like ``scenarios.py``, in the contract's shape, shared by the integration tests and usable by a
demo. The consumers are real services on the lab's systemd hosts that use their credential
for real, through a relay on the hosts' gateway address (the services themselves listen on
127.0.0.1 only; the relay runs in the test process, for the lab's own hosts):

- the AWS consumer signs an STS GetCallerIdentity with AWS Signature V4 (stdlib only) using
  AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from its environment file, and is healthy while the
  answer is the expected IAM user;
- the database consumer logs in to PostgreSQL (the wire protocol and SCRAM-SHA-256 in stdlib)
  as DB_USER with DB_PASSWORD from its environment file, and is healthy while the login works.

Both check on each health request, never in the background: what the issuer records as a use
of a key (GetAccessKeyLastUsed, a session in pg_stat_activity) comes only from those requests.
"""
import json
import socket
import threading
import time
import urllib.error
import urllib.request

import hvac

from tests.lab import _proc
from tests.lab.scenarios import KV_MOUNT

APP_DIR = "/opt/credops-demo"

UNIT = """[Unit]
Description=Demo {what} consumer ({name})
After=network.target

[Service]
EnvironmentFile={env_file}
{environment}
ExecStart=/usr/bin/python3 {app_dir}/{app}
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
"""

# --- the consumers' code (runs on the hosts: Debian's python3, stdlib only) -----------------------

AWS_APP = r'''#!/usr/bin/env python3
"""Demo AWS consumer: GET /health/aws signs STS GetCallerIdentity (SigV4) with the access key
pair of its environment; 200 {"aws": "connected"} while AWS answers with EXPECTED_IAM_USER."""
import datetime, hashlib, hmac, json, os, re, urllib.error, urllib.parse, urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEY_ID = os.environ.get("AWS_ACCESS_KEY_ID", "")
SECRET = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "https://sts.amazonaws.com").rstrip("/")
REGION = os.environ.get("AWS_REGION", "us-east-1")
USER = os.environ.get("EXPECTED_IAM_USER", "")
PORT = int(os.environ.get("LISTEN_PORT", "8081"))


def _h(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def caller_arn():
    body = "Action=GetCallerIdentity&Version=2011-06-15"
    host = urllib.parse.urlparse(ENDPOINT).netloc
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    ctype = "application/x-www-form-urlencoded; charset=utf-8"
    signed = "content-type;host;x-amz-date"
    canonical = "\n".join(["POST", "/", "", "content-type:" + ctype, "host:" + host, "x-amz-date:" + amz_date, "",
                           signed, hashlib.sha256(body.encode()).hexdigest()])
    scope = "%s/%s/sts/aws4_request" % (day, REGION)
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _h(_h(_h(_h(("AWS4" + SECRET).encode(), day), REGION), "sts"), "aws4_request")
    auth = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        KEY_ID, scope, signed, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest())
    req = urllib.request.Request(ENDPOINT + "/", data=body.encode(), method="POST", headers={
        "Content-Type": ctype, "X-Amz-Date": amz_date, "Authorization": auth})
    with urllib.request.urlopen(req, timeout=5) as resp:
        found = re.search(r"<Arn>([^<]+)</Arn>", resp.read().decode())
    return found.group(1) if found else ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path == "/health/aws":
            try:
                arn = caller_arn() if KEY_ID and SECRET else ""
                ok = arn.endswith(":user/" + USER)
                body = {"aws": "connected" if ok else "rejected", "arn": arn}
            except (urllib.error.URLError, OSError) as exc:
                ok, body = False, {"aws": "rejected", "error": type(exc).__name__}
            code = 200 if ok else 503
        elif self.path == "/health":
            body, code = {"status": "up", "access_key_id": KEY_ID}, 200
        else:
            body, code = {"error": "not_found"}, 404
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
'''

DB_APP = r'''#!/usr/bin/env python3
"""Demo database consumer: GET /health/database logs in to PostgreSQL (SCRAM-SHA-256) as DB_USER
with DB_PASSWORD of its environment; 200 {"database": "connected", "user": ...} while it works."""
import base64, hashlib, hmac, json, os, socket, struct
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = os.environ.get("DB_HOST", "127.0.0.1")
PORT_DB = int(os.environ.get("DB_PORT", "5432"))
NAME = os.environ.get("DB_NAME", "postgres")
USER = os.environ.get("DB_USER", "")
PASSWORD = os.environ.get("DB_PASSWORD", "")
PORT = int(os.environ.get("LISTEN_PORT", "8082"))


def _recv(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed by the server")
        data += chunk
    return data


def _send(sock, kind, payload):
    sock.sendall(kind + struct.pack("!i", 4 + len(payload)) + payload)


def login():
    """(True, None) once the server says ReadyForQuery, else (False, the server's message)."""
    with socket.create_connection((HOST, PORT_DB), timeout=5) as sock:
        params = b"".join(k + b"\0" + v.encode() + b"\0" for k, v in (
            (b"user", USER), (b"database", NAME), (b"application_name", "credops-demo-consumer"))) + b"\0"
        sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        first = nonce = None
        while True:
            kind = _recv(sock, 1)
            body = _recv(sock, struct.unpack("!i", _recv(sock, 4))[0] - 4)
            if kind == b"E":
                fields = dict((f[:1], f[1:].decode("utf-8", "replace")) for f in body.split(b"\0") if f)
                return False, fields.get(b"M", "error")
            if kind == b"Z":
                _send(sock, b"X", b"")
                return True, None
            if kind != b"R":
                continue  # ParameterStatus, BackendKeyData, NoticeResponse
            code = struct.unpack("!i", body[:4])[0]
            if code == 10:  # SASL: start SCRAM-SHA-256
                nonce = base64.b64encode(os.urandom(18)).decode()
                first = "n=,r=" + nonce
                msg = ("n,," + first).encode()
                _send(sock, b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(msg)) + msg)
            elif code == 11:  # SASLContinue: prove the password
                server_first = body[4:].decode()
                attrs = dict(item.split("=", 1) for item in server_first.split(","))
                if not attrs["r"].startswith(nonce):
                    return False, "bad server nonce"
                salted = hashlib.pbkdf2_hmac("sha256", PASSWORD.encode(), base64.b64decode(attrs["s"]),
                                             int(attrs["i"]))
                client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
                without_proof = "c=biws,r=" + attrs["r"]
                auth = ",".join((first, server_first, without_proof)).encode()
                signature = hmac.new(hashlib.sha256(client_key).digest(), auth, hashlib.sha256).digest()
                proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature))).decode()
                _send(sock, b"p", (without_proof + ",p=" + proof).encode())
            elif code not in (0, 12):  # 0 AuthenticationOk, 12 SASLFinal
                return False, "unsupported authentication request %d" % code


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path == "/health/database":
            try:
                ok, error = login() if USER and PASSWORD else (False, "no credentials")
            except OSError as exc:
                ok, error = False, type(exc).__name__
            body = {"database": "connected" if ok else "rejected", "user": USER}
            if error:
                body["error"] = error
            code = 200 if ok else 503
        elif self.path == "/health":
            body, code = {"status": "up", "user": USER}, 200
        else:
            body, code = {"error": "not_found"}, 404
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
'''


# --- the relay: the lab's hosts reach a loopback service through the gateway address --------------

class Relay:
    """TCP relay ``listen_host:port`` -> ``127.0.0.1:target_port``, in threads of this process.

    Listens only on the gateway address of the lab's own hosts; every wait is bounded."""

    def __init__(self, listen_host, target_port, idle_timeout=60):
        self.listen_host, self.target_port, self.idle_timeout = listen_host, target_port, idle_timeout
        self.port = None
        self._sock = None
        self._stop = threading.Event()

    def start(self):
        self.port = _proc.free_port(self.listen_host)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.listen_host, self.port))
        self._sock.listen(32)
        self._sock.settimeout(0.5)
        threading.Thread(target=self._accept, name="relay-%d" % self.port, daemon=True).start()
        return self

    def url(self, scheme="http"):
        return "%s://%s:%d" % (scheme, self.listen_host, self.port)

    def _accept(self):
        while not self._stop.is_set():
            try:
                client, _addr = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            for sock in (client, upstream):
                sock.settimeout(self.idle_timeout)
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def stop(self):
        self._stop.set()
        if self._sock is not None:
            self._sock.close()
            self._sock = None


# --- consumers ----------------------------------------------------------------------------------

def _install(host, name, app, source, env_file, env_lines, environment, what, health_url, wait=20):
    host.put_file(APP_DIR + "/" + app, source, mode=0o755)
    host.put_file(env_file, "\n".join(env_lines) + "\n", mode=0o600)
    host.put_file("/etc/systemd/system/%s.service" % name, UNIT.format(
        name=name, what=what, env_file=env_file, app_dir=APP_DIR, app=app,
        environment="\n".join("Environment=%s=%s" % kv for kv in environment.items())))
    host.systemctl("daemon-reload")
    host.systemctl("enable", name + ".service")
    host.systemctl("restart", name + ".service")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if http_status(health_url, deadline=0) == 200:
            return
        time.sleep(0.2)
    raise TimeoutError("%s on %s is not healthy after %ss:\n%s" % (name, host.name, wait,
                                                                   host.journal(name + ".service", 30)))


def http_status(url, want=200, deadline=15):
    """The status of GET url, waiting (bounded) for a restarting service to answer ``want``."""
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except OSError:
            status = None
        if status == want or time.monotonic() >= end:
            return status
        time.sleep(0.2)


def http_json(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read())


def service_url(host, port, path):
    return "http://%s:%d%s" % (host.address, port, path)


# --- AWS: an IAM access key in Secrets Manager ----------------------------------------------------

AWS_SERVICE, AWS_PORT, AWS_ENV_FILE = "aws-exporter", 8081, "/etc/aws-exporter/environment"


def aws_relay(lab):
    """One relay per lab to its moto server (kept on the lab object, stopped with the test session)."""
    relay = getattr(lab, "_aws_relay", None)
    if relay is None:
        relay = lab._aws_relay = Relay(lab.systemd.gateway, lab.moto.port).start()
    return relay


def install_aws_consumer(lab, host, key_id, secret, user_name, port=AWS_PORT):
    relay = aws_relay(lab)
    _install(host, AWS_SERVICE, "aws_consumer.py", AWS_APP, AWS_ENV_FILE,
             ["LOG_LEVEL=info", "AWS_ACCESS_KEY_ID=" + key_id, "AWS_SECRET_ACCESS_KEY=" + secret],
             {"AWS_ENDPOINT_URL": relay.url(), "AWS_REGION": lab.moto.region, "EXPECTED_IAM_USER": user_name,
              "LISTEN_PORT": port}, "AWS", service_url(host, port, "/health/aws"))


def aws_key_record(lab, name, group="web", risk="high"):
    """An IAM user's access key (issuer aws_iam) in Secrets Manager, used by systemd consumers that
    get the key id too (id_env_var)."""
    return {
        "type": "api_key", "risk": risk, "rotation_contact": "platform-team@example.org",
        "issuer": {"kind": "aws_iam", "user_name": name, "endpoint_url": "{{ lab_aws_endpoint_url }}",
                   "region": lab.moto.region, "wait_timeout": 30},
        "store": {"kind": "aws_secretsmanager", "secret_id": "rotation/" + name,
                  "endpoint_url": "{{ lab_aws_endpoint_url }}", "region": lab.moto.region,
                  "field": "aws_secret_access_key"},
        "consumers": [{
            "name": "aws-exporter", "kind": "systemd", "hosts": group,
            "env_file": AWS_ENV_FILE, "env_var": "AWS_SECRET_ACCESS_KEY", "id_env_var": "AWS_ACCESS_KEY_ID",
            "service": AWS_SERVICE + ".service",
            "verify": {"url": "http://{{ ansible_host }}:%d/health/aws" % AWS_PORT, "status": 200,
                       "json": {"aws": "connected"}},
        }],
    }


def seed_aws_key(lab, name, hosts=None):
    """The state before the first rotation: an IAM user with one active key, that key in Secrets
    Manager (its id in the credops:key_id tag, as the aws runbook says to adopt a secret), and the
    consumer running with it on every host."""
    iam, sm = lab.moto.client("iam"), lab.moto.client("secretsmanager")
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    sm.create_secret(Name="rotation/" + name,
                     SecretString=json.dumps({"aws_secret_access_key": key["SecretAccessKey"]}),
                     Tags=[{"Key": "credops:key_id", "Value": key["AccessKeyId"]}])
    for host in hosts if hosts is not None else lab.hosts:
        install_aws_consumer(lab, host, key["AccessKeyId"], key["SecretAccessKey"], name)
    return key["AccessKeyId"], key["SecretAccessKey"]


def sm_labels(lab, name):
    """{staging label: VersionId} of the credential's secret, from Secrets Manager itself."""
    desc = lab.moto.client("secretsmanager").describe_secret(SecretId="rotation/" + name)
    return dict((stage, vid) for vid, stages in desc.get("VersionIdsToStages", {}).items() for stage in stages)


def sm_value(lab, name, stage="AWSCURRENT"):
    resp = lab.moto.client("secretsmanager").get_secret_value(SecretId="rotation/" + name, VersionStage=stage)
    return json.loads(resp["SecretString"])["aws_secret_access_key"]


def sm_tags(lab, name):
    desc = lab.moto.client("secretsmanager").describe_secret(SecretId="rotation/" + name)
    return dict((t["Key"], t["Value"]) for t in desc.get("Tags", []))


def iam_keys(lab, name):
    """{access key id: status} of the IAM user, from IAM itself."""
    keys = lab.moto.client("iam").list_access_keys(UserName=name)["AccessKeyMetadata"]
    return dict((k["AccessKeyId"], k["Status"]) for k in keys)


def sts_user(lab, key_id, secret):
    """The IAM user an access key pair signs in as (moto answers 'moto' for an unknown key)."""
    import boto3
    sts = boto3.client("sts", endpoint_url=lab.moto.endpoint_url, region_name=lab.moto.region,
                       aws_access_key_id=key_id, aws_secret_access_key=secret)
    return sts.get_caller_identity()["Arn"].rsplit("/", 1)[-1]


# --- PostgreSQL: a login role's password (one role, or two alternating roles) --------------------

DB_SERVICE, DB_PORT, DB_ENV_FILE = "orders-app", 8082, "/etc/orders-app/environment"


def db_relay(lab, postgres):
    relay = getattr(lab, "_db_relay", None)
    if relay is None or relay.target_port != postgres.port:
        relay = lab._db_relay = Relay(lab.systemd.gateway, postgres.port).start()
    return relay


def install_db_consumer(lab, postgres, host, user, password, fixed_user=True, port=DB_PORT):
    """The demo database consumer on a lab host. ``fixed_user``: DB_USER is part of the unit
    (single role); else it is a line of the environment file (alternating roles)."""
    relay = db_relay(lab, postgres)
    lines = ["LOG_LEVEL=info", "DB_PASSWORD=" + password] + ([] if fixed_user else ["DB_USER=" + user])
    environment = {"DB_HOST": relay.listen_host, "DB_PORT": relay.port, "DB_NAME": postgres.dbname,
                   "LISTEN_PORT": port}
    if fixed_user:
        environment["DB_USER"] = user
    _install(host, DB_SERVICE, "db_consumer.py", DB_APP, DB_ENV_FILE, lines, environment, "database",
             service_url(host, port, "/health/database"))


def db_record(lab, postgres, name, role=None, roles=None, group="web", risk="high"):
    """A database password (issuer postgres: one role, or roles alternating) in OpenBao KV v2."""
    issuer = {"kind": "postgres", "host": postgres.host, "port": postgres.port, "db": postgres.dbname,
              "admin_user": postgres.admin_user, "admin_password": "{{ lookup('ansible.builtin.env', 'PGPASSWORD') }}",
              "sslmode": "disable"}
    if roles:
        issuer["roles"] = list(roles)
    else:
        issuer["role"] = role
    consumer = {"name": "orders-app", "kind": "systemd", "hosts": group, "env_file": DB_ENV_FILE,
                "env_var": "DB_PASSWORD", "service": DB_SERVICE + ".service",
                "verify": {"url": "http://{{ ansible_host }}:%d/health/database" % DB_PORT, "status": 200,
                           "json": {"database": "connected"}}}
    if roles:
        consumer["id_env_var"] = "DB_USER"
    return {
        "type": "database", "risk": risk, "rotation_contact": "dba-team@example.org",
        "issuer": issuer,
        "store": {"kind": "vault_kv2", "url": "{{ vault_addr }}", "mount": KV_MOUNT, "path": "db/" + name,
                  "field": "password"},
        "consumers": [consumer],
    }


def _psql_ok(postgres, sql):
    res = postgres.psql(sql)
    if res.returncode != 0:
        raise RuntimeError("psql %r: %s" % (sql, res.stderr))
    return res.stdout


def seed_db_role(lab, postgres, name, role, password, hosts=None):
    """One login role with a table it may use; its password in KV (key id '<role>@seed') and on
    the consumers."""
    _psql_ok(postgres, "CREATE ROLE %s LOGIN PASSWORD '%s'" % (role, password))
    _psql_ok(postgres, "CREATE TABLE %s_orders (id int)" % role)
    _psql_ok(postgres, "GRANT SELECT, INSERT ON %s_orders TO %s" % (role, role))
    _kv_write(lab, name, {"password": password, "key_id": role + "@seed"})
    for host in hosts if hosts is not None else lab.hosts:
        install_db_consumer(lab, postgres, host, role, password)


def seed_db_alternating(lab, postgres, name, roles, password, hosts=None):
    """Two login roles with the same grants through one group role that owns the table; the first
    in use (LOGIN, its password in KV with key id = its name and on the consumers), the second idle
    (NOLOGIN)."""
    group = roles[0] + "_rw"
    _psql_ok(postgres, "CREATE ROLE %s NOLOGIN" % group)
    _psql_ok(postgres, "CREATE TABLE %s_orders (id int)" % group)
    _psql_ok(postgres, "ALTER TABLE %s_orders OWNER TO %s" % (group, group))
    _psql_ok(postgres, "CREATE ROLE %s LOGIN PASSWORD '%s' IN ROLE %s" % (roles[0], password, group))
    _psql_ok(postgres, "CREATE ROLE %s NOLOGIN IN ROLE %s" % (roles[1], group))
    _kv_write(lab, name, {"password": password, "key_id": roles[0]})
    for host in hosts if hosts is not None else lab.hosts:
        install_db_consumer(lab, postgres, host, roles[0], password, fixed_user=False)
    return group


def _kv_write(lab, name, data):
    client = hvac.Client(url=lab.openbao.addr, token=lab.openbao.token)
    client.secrets.kv.v2.create_or_update_secret(path="db/" + name, mount_point=KV_MOUNT, secret=data)


def db_kv_read(lab, name):
    client = hvac.Client(url=lab.openbao.addr, token=lab.openbao.token)
    data = client.secrets.kv.v2.read_secret_version(path="db/" + name, mount_point=KV_MOUNT,
                                                    raise_on_deleted_version=True)["data"]
    meta = client.secrets.kv.v2.read_secret_metadata(path="db/" + name, mount_point=KV_MOUNT)["data"]
    return data["data"], meta


def can_log_in(postgres, role, password):
    """True when psql logs in as ``role`` with ``password`` (and runs a query)."""
    res = postgres.psql("select current_user", user=role, password=password)
    return res.returncode == 0 and res.stdout.strip() == role


def role_can_login(postgres, role):
    return _psql_ok(postgres, "SELECT rolcanlogin FROM pg_roles WHERE rolname = '%s'" % role).strip() == "t"
