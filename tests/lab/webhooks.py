"""Webhook receivers on the lab's systemd hosts, and an independent client for them.

    install_receiver(lab, host, secret, name="orders-receiver", port=8091)
    post_signed(receiver_url(host, 8091), secret)      -> HTTP status (200 accepted, 401 not)
    deliveries(host, 8091)                             -> the receiver's delivery log

The client signs with the standard library's hmac (not the collection's code), so tests check
the collection against an independent implementation of the signature scheme.
"""
import hashlib
import hmac
import json
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path

RECEIVER_APP = Path(__file__).with_name("webhook_receiver.py")
APP_DIR = "/opt/credops-webhook"
SIGNATURE_HEADER = "X-Webhook-Signature"

UNIT = """[Unit]
Description=Demo webhook receiver ({name})
After=network.target

[Service]
EnvironmentFile={env_file}
Environment=SECRET_ENV_VAR={env_var}
Environment=LISTEN_PORT={port}
Environment=DELIVERY_LOG={log}
Environment=SIGNATURE_HEADER={header}
ExecStart=/usr/bin/python3 {app_dir}/webhook_receiver.py
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


def install_receiver(lab, host, secret, name="webhook-receiver", env_file=None, env_var="WEBHOOK_SECRET",
                     port=8091, extra_env=("LOG_LEVEL=info",), header=SIGNATURE_HEADER, wait=20):
    """Install the demo receiver as systemd service NAME.service on a lab host, accepting
    ``secret`` (the env file holds ``<env_var>=secret`` beside ``extra_env``, mode 0600),
    start it and wait until it answers. Returns its delivery URL."""
    env_file = env_file or "/etc/%s/environment" % name
    host.put_file(APP_DIR + "/webhook_receiver.py", RECEIVER_APP.read_text(), mode=0o755)
    lines = list(extra_env) + ["%s=%s" % (env_var, secret)]
    host.put_file(env_file, "\n".join(lines) + "\n", mode=0o600)
    log = "/var/lib/%s/deliveries.jsonl" % name
    host.run("rm", "-f", log)
    host.put_file("/etc/systemd/system/%s.service" % name, UNIT.format(
        name=name, env_file=env_file, env_var=env_var, port=port, log=log, header=header,
        app_dir=APP_DIR))
    host.systemctl("daemon-reload")
    host.systemctl("enable", "--now", name + ".service")
    host.systemctl("restart", name + ".service")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            if health(host, port).get("status") == "up":
                return receiver_url(host, port)
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.2)
    raise TimeoutError("webhook receiver %s on %s did not answer within %ss:\n%s"
                       % (name, host.name, wait, host.journal(name + ".service", 30)))


def receiver_url(host, port=8091, path="/webhook"):
    return "http://%s:%d%s" % (host.address, port, path)


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def health(host, port=8091):
    return _get(receiver_url(host, port, "/health"))


def deliveries(host, port=8091):
    return _get(receiver_url(host, port, "/deliveries"))["deliveries"]


def sign(secret, body, timestamp=None):
    """The header value for body, with the standard library only."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), ("%d.%s" % (ts, body)).encode(), hashlib.sha256).hexdigest()
    return "t=%d,v1=%s" % (ts, mac)


def post_signed(url, secret, event=None, header=SIGNATURE_HEADER):
    """POST a test event signed with secret; the receiver's HTTP status."""
    event = event or {"id": "evt_test_" + secrets.token_hex(6), "type": "lab.test"}
    body = json.dumps(event, separators=(",", ":"))
    req = urllib.request.Request(url, data=body.encode(), method="POST", headers={
        "Content-Type": "application/json", header: sign(secret, body)})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
