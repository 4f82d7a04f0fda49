# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""X.509 certificates: the one place that loads them and reads their facts (``cryptography``).

A certificate is public; a PEM text may also hold the private key (a store's bundle, a
``tls.crt``/``tls.key`` pair pasted together): only the CERTIFICATE blocks are ever handed
to the parser, the rest of the text is never touched.

``cryptography`` is imported on first use (``_lazy``), not when this file is loaded:
``import_error()`` says whether it is there.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re

from ansible_collections.credops.rotation.plugins.module_utils._lazy import LazyModule
from ansible_collections.credops.rotation.plugins.module_utils._time import UTC, format_time

x509 = LazyModule("cryptography.x509")

_PEM_CERTIFICATE = re.compile(r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----")


def import_error():
    """The import's traceback text when ``cryptography`` cannot be imported, else None."""
    return x509.import_error()


def _text(pem):
    if isinstance(pem, (bytes, bytearray)):
        return bytes(pem).decode("ascii", "replace")
    return str(pem or "")


def pem_blocks(pem):
    """The CERTIFICATE blocks of a PEM text (str or bytes), in order; nothing else of the text."""
    return _PEM_CERTIFICATE.findall(_text(pem))


def is_der(value):
    """True for bytes that are no PEM text (a DER certificate, as a TLS handshake gives it)."""
    return isinstance(value, (bytes, bytearray)) and not bytes(value).lstrip().startswith(b"-----")


def load(pem_or_der):
    """The first certificate of a PEM text (str or bytes), or of DER bytes; None when a PEM
    text holds no CERTIFICATE block. Raises ValueError when the certificate cannot be read."""
    if is_der(pem_or_der):
        return x509.load_der_x509_certificate(bytes(pem_or_der))
    blocks = pem_blocks(pem_or_der)
    return x509.load_pem_x509_certificate(blocks[0].encode("ascii")) if blocks else None


def load_chain(pem):
    """Every certificate of a PEM text (a certificate and its CA chain), in order."""
    return [x509.load_pem_x509_certificate(block.encode("ascii")) for block in pem_blocks(pem)]


def validity(cert):
    """(not_before, not_after) of a loaded certificate, aware UTC datetimes."""
    if hasattr(cert, "not_valid_after_utc"):   # cryptography >= 42
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    return cert.not_valid_before.replace(tzinfo=UTC), cert.not_valid_after.replace(tzinfo=UTC)


def pem_validity(pem):
    """(not_before, not_after) of the first certificate of a PEM text, or (None, None) when there
    is none, it cannot be read, or ``cryptography`` is missing (the dates then stay unknown)."""
    if not pem or import_error():
        return None, None
    try:
        cert = load(pem)
    except ValueError:
        return None, None
    return validity(cert) if cert is not None else (None, None)


def serial_hex(cert, even=False):
    """The serial number in lower-case hex, no separators; ``even`` pads it to whole bytes."""
    text = "%x" % cert.serial_number
    return "0" + text if even and len(text) % 2 else text


def colon_hex(text):
    """``0a1b2c`` as ``0a:1b:2c`` (the spelling of Vault and of openssl)."""
    return ":".join(text[i:i + 2] for i in range(0, len(text), 2))


def sha256_fingerprint(der):
    """The SHA-256 fingerprint of a DER certificate, lower-case hex."""
    return hashlib.sha256(bytes(der)).hexdigest()


def certificate_dates(pem_or_der):
    """not_before, not_after (ISO-8601 UTC), subject and serial (hex) of the first certificate
    of a PEM text (or of DER bytes); None when a PEM text holds no certificate."""
    cert = load(pem_or_der)
    if cert is None:
        return None
    not_before, not_after = validity(cert)
    return {"not_before": format_time(not_before), "not_after": format_time(not_after),
            "subject": cert.subject.rfc4514_string(), "serial": serial_hex(cert)}
