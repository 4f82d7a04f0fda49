"""_x509: the one loader of certificates, and the facts read from them."""
import datetime
import hashlib

import pytest

from ansible_collections.credops.rotation.plugins.module_utils import _x509

x509 = pytest.importorskip("cryptography.x509")
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402 - after the skip
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402

UTC = datetime.timezone.utc
START = datetime.datetime(2024, 8, 15, 10, 30, tzinfo=UTC)
END = START + datetime.timedelta(days=90)


def make(serial=0x0A1B2C, cn="svc.lab.test"):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(START).not_valid_after(END).sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert, cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem


def test_load_takes_pem_text_bytes_or_der_and_only_the_certificate_block():
    cert, pem, key_pem = make()
    der = cert.public_bytes(serialization.Encoding.DER)
    for value in (pem, pem.encode(), key_pem + pem, der, bytearray(der)):
        assert _x509.load(value).serial_number == 0x0A1B2C
    assert _x509.load(key_pem) is None and _x509.load("") is None and _x509.load(None) is None
    assert _x509.pem_blocks(key_pem + pem) == [pem.strip()]
    with pytest.raises(ValueError):
        _x509.load(b"\x30\x03\x02\x01\x01")


def test_load_chain_keeps_the_order():
    leaf, ca = make(serial=1, cn="leaf"), make(serial=2, cn="ca")
    chain = _x509.load_chain(leaf[1] + leaf[2] + ca[1])
    assert [c.serial_number for c in chain] == [1, 2]
    assert _x509.load_chain("no certificate here") == []


def test_validity_serial_fingerprint_and_dates():
    cert, pem, key_pem = make()
    der = cert.public_bytes(serialization.Encoding.DER)
    assert _x509.validity(cert) == (START, END)
    assert _x509.serial_hex(cert) == "a1b2c" and _x509.serial_hex(cert, even=True) == "0a1b2c"
    assert _x509.colon_hex("0a1b2c") == "0a:1b:2c"
    assert _x509.sha256_fingerprint(der) == hashlib.sha256(der).hexdigest()
    assert _x509.certificate_dates(key_pem + pem) == {
        "not_before": "2024-08-15T10:30:00Z", "not_after": "2024-11-13T10:30:00Z",
        "subject": "CN=svc.lab.test", "serial": "a1b2c"}
    assert _x509.certificate_dates(key_pem) is None


@pytest.mark.parametrize("value, expected", [
    ("", (None, None)), (None, (None, None)), ("no certificate", (None, None)),
    ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", (None, None)),
])
def test_pem_validity_is_unknown_rather_than_an_error(value, expected):
    assert _x509.pem_validity(value) == expected


def test_pem_validity_reads_the_first_certificate():
    assert _x509.pem_validity(make()[1]) == (START, END)


def test_pem_validity_without_cryptography(monkeypatch):
    monkeypatch.setattr(_x509, "import_error", lambda: "ModuleNotFoundError: cryptography")
    assert _x509.pem_validity(make()[1]) == (None, None)
