"""TLS consumers on the lab's systemd hosts, certificates from the lab's OpenBao PKI, and the
independent checks the tests make of them (Python's ssl, cryptography, hvac).

    cert = issue_certificate(lab, "tls-app.lab.test", ip_sans=[h.address for h in lab.hosts])
    install_tls_consumer(lab, host, cert["certificate"], cert["private_key"], name="tls-app")
    served_certificate(host.address, 8443, ca_pem(lab)).serial_number   # a verified handshake

The consumer is the demo consumer application (consumer_app.py) in its TLS mode: it serves
GET /health over HTTPS with the certificate and key of its files, read at start and again
on SIGHUP (``systemctl reload``).
"""
import json
import socket
import ssl
import time
import urllib.request

import hvac
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.lab.lab import APP_DIR, CONSUMER_APP

PKI_MOUNT = "pki"
PKI_ROLE = "lab"          # allows *.lab.test, localhost and IP SANs, at most 720h
KV_MOUNT = "secret"
KV_PREFIX = "certificates/"
FIELD = "private_key"

TLS_UNIT = """[Unit]
Description=Demo TLS consumer ({name})
After=network.target

[Service]
Environment=TLS_CERT_FILE={cert_file}
Environment=TLS_KEY_FILE={key_file}
Environment=TLS_PORT={port}
Environment=LISTEN_PORT=0
ExecStart=/usr/bin/python3 {app_dir}/consumer_app.py
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=1

[Install]
WantedBy=multi-user.target
"""


def client(lab):
    return hvac.Client(url=lab.openbao.addr, token=lab.openbao.token)


def ca_pem(lab):
    """The lab CA certificate (PEM), read from the PKI's public endpoint."""
    with urllib.request.urlopen(lab.openbao.addr + "/v1/%s/ca/pem" % PKI_MOUNT, timeout=10) as resp:
        return resp.read().decode()


def serial_int(serial):
    """A serial as Vault spells it ("1c:5b:...") or an int, as an int."""
    return serial if isinstance(serial, int) else int(str(serial).replace(":", "").replace("-", ""), 16)


def issue_certificate(lab, common_name, ip_sans=(), ttl="72h"):
    """A certificate and key from the lab PKI: the issue response's data (certificate,
    private_key, serial_number, issuing_ca, ca_chain, expiration)."""
    params = {"ttl": ttl}
    if ip_sans:
        params["ip_sans"] = ",".join(ip_sans)
    return client(lab).secrets.pki.generate_certificate(
        name=PKI_ROLE, common_name=common_name, extra_params=params, mount_point=PKI_MOUNT)["data"]


def install_tls_consumer(lab, host, cert_pem, key_pem, name="tls-app", cert_file=None, key_file=None,
                         ca_file=None, ca=None, port=8443, wait=True):
    """Install the demo consumer as a TLS service ``<name>.service`` on a lab host, with its
    certificate (mode 0644) and key (mode 0600); waits (bounded) until it serves them."""
    conf = "/etc/%s" % name
    files = {"cert_file": cert_file or conf + "/tls.crt", "key_file": key_file or conf + "/tls.key"}
    if ca_file or ca:
        files["ca_file"] = ca_file or conf + "/ca.crt"
    host.put_file(APP_DIR + "/consumer_app.py", CONSUMER_APP.read_text(), mode=0o755)
    host.put_file(files["cert_file"], cert_pem.strip() + "\n", mode=0o644)
    host.put_file(files["key_file"], key_pem.strip() + "\n", mode=0o600)
    if "ca_file" in files:
        host.put_file(files["ca_file"], (ca or ca_pem(lab)).strip() + "\n", mode=0o644)
    host.put_file("/etc/systemd/system/%s.service" % name, TLS_UNIT.format(
        name=name, cert_file=files["cert_file"], key_file=files["key_file"], port=port, app_dir=APP_DIR))
    host.systemctl("daemon-reload")
    host.systemctl("enable", "--now", name + ".service")
    if wait:
        wait_served(host.address, port, ca or ca_pem(lab))
    return dict(files, service=name + ".service", port=port)


def remove_tls_consumer(host, name="tls-app", paths=()):
    """Stop and remove a TLS consumer (its unit, drop-ins and the given files)."""
    host.systemctl("disable", "--now", name + ".service", check=False)
    host.run("rm", "-rf", "/etc/systemd/system/%s.service" % name,
             "/etc/systemd/system/%s.service.d" % name, "/etc/%s" % name, *paths, check=False)
    host.systemctl("daemon-reload", check=False)


def served_certificate(address, port, ca, timeout=5):
    """The certificate an HTTPS endpoint presents, after a handshake that verified its chain
    against ``ca`` (PEM) and its name against ``address`` (an IP SAN); an x509.Certificate."""
    context = ssl.create_default_context(cadata=ca)
    with socket.create_connection((address, port), timeout=timeout) as sock:
        with context.wrap_socket(sock, server_hostname=address) as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def health(address, port, ca, timeout=5):
    """GET /health over verified HTTPS: (status, JSON body)."""
    context = ssl.create_default_context(cadata=ca)
    with urllib.request.urlopen("https://%s:%d/health" % (address, port), context=context,
                                timeout=timeout) as resp:
        return resp.status, json.loads(resp.read())


def wait_served(address, port, ca, serial=None, deadline=30):
    """Wait (bounded) until the endpoint completes a verified handshake (presenting ``serial``
    when given); returns the certificate. Raises AssertionError with the last problem."""
    end = time.monotonic() + deadline
    problem = None
    while True:
        try:
            cert = served_certificate(address, port, ca)
            if serial is None or cert.serial_number == serial_int(serial):
                return cert
            problem = "serial %x presented, %x wanted" % (cert.serial_number, serial_int(serial))
        except (OSError, ssl.SSLError) as exc:
            problem = "%s: %s" % (type(exc).__name__, exc)
        if time.monotonic() > end:
            raise AssertionError("%s:%d: %s" % (address, port, problem))
        time.sleep(0.2)


def crl_serials(lab):
    """Serial numbers (ints) on the PKI's CRL, parsed with cryptography."""
    pem = client(lab).secrets.pki.read_crl(mount_point=PKI_MOUNT)
    crl = x509.load_pem_x509_crl(pem.encode() if isinstance(pem, str) else pem)
    return {revoked.serial_number for revoked in crl}


def key_matches(cert_pem, key_pem):
    """Whether a private key (PEM) belongs to a certificate (PEM)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def first_certificate(pem_text):
    """The first certificate of a PEM text (a cert file holds the chain after it)."""
    return x509.load_pem_x509_certificates(pem_text.encode())[0]


def certificate_record(lab, name, group="web", port=8443, ca_path=None, reload=False, ttl="72h",
                       addresses=None, files=None, risk="standard", max_age_days=None):
    """A `certificate` credential in the contract's shape: issuer vault_pki, store KV v2 (the
    private key in `private_key`), one systemd TLS consumer on ``group`` verified over HTTPS."""
    files = files or {"cert_file": "/etc/%s/tls.crt" % name, "key_file": "/etc/%s/tls.key" % name,
                      "ca_file": "/etc/%s/ca.crt" % name}
    verify = {"url": "https://{{ ansible_host }}:%d/health" % port, "status": 200, "json": {"status": "up"}}
    if ca_path:
        verify["ca_path"] = str(ca_path)
    consumer = {"name": "tls-app", "kind": "systemd", "hosts": group, "service": name + ".service",
                "cert_file": files["cert_file"], "key_file": files["key_file"], "verify": verify}
    if files.get("ca_file"):
        consumer["ca_file"] = files["ca_file"]
    if reload:
        consumer["reload"] = True
    record = {
        "type": "certificate", "risk": risk, "rotation_contact": "platform-team@example.org",
        "issuer": {"kind": "vault_pki", "url": "{{ vault_addr }}", "mount": PKI_MOUNT, "role": PKI_ROLE,
                   "common_name": "%s.lab.test" % name,
                   "ip_sans": list(addresses if addresses is not None else [h.address for h in lab.hosts]),
                   "ttl": ttl},
        "store": {"kind": "vault_kv2", "url": "{{ vault_addr }}", "mount": KV_MOUNT, "path": KV_PREFIX + name,
                  "field": FIELD},
        "consumers": [consumer],
    }
    if max_age_days is not None:
        record["max_age_days"] = max_age_days
    return record


def seed_certificate(lab, name, hosts=None, port=8443, ttl="72h", install=True):
    """The state before the first rotation: a certificate from the PKI in the store (key as
    the value, the certificate beside it) and, with ``install``, served by the TLS consumer
    ``<name>.service`` on each host. Returns the issue response's data."""
    hosts = lab.hosts if hosts is None else hosts
    cert = issue_certificate(lab, "%s.lab.test" % name, [h.address for h in lab.hosts], ttl)
    client(lab).secrets.kv.v2.create_or_update_secret(
        path=KV_PREFIX + name, mount_point=KV_MOUNT,
        secret={FIELD: cert["private_key"], "key_id": cert["serial_number"], "certificate": cert["certificate"]})
    if install:
        ca = ca_pem(lab)
        for host in hosts:
            install_tls_consumer(lab, host, cert["certificate"], cert["private_key"], name=name,
                                 ca_file="/etc/%s/ca.crt" % name, ca=ca, port=port)
    return cert


def kv_read(lab, name, version=None):
    """(data, metadata) of a certificate credential's KV v2 secret (a given version, or the latest)."""
    kv = client(lab).secrets.kv.v2
    data = kv.read_secret_version(path=KV_PREFIX + name, mount_point=KV_MOUNT, version=version,
                                  raise_on_deleted_version=True)["data"]
    meta = kv.read_secret_metadata(path=KV_PREFIX + name, mount_point=KV_MOUNT)["data"]
    return data["data"], meta


def set_custom_metadata(lab, name, **items):
    """Merge items into the secret's custom_metadata (to backdate what the issue step recorded)."""
    kv = client(lab).secrets.kv.v2
    meta = kv.read_secret_metadata(path=KV_PREFIX + name, mount_point=KV_MOUNT)["data"]
    custom = dict(meta.get("custom_metadata") or {})
    custom.update(items)
    kv.update_metadata(path=KV_PREFIX + name, mount_point=KV_MOUNT, custom_metadata=custom)
