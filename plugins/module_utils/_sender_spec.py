# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a webhook credential's ``sender:`` block is: its one argspec, and ``carries``, the
check that a call's body or form holds a placeholder.

Kept apart from ``_sender`` (which drives the sender's API and imports cryptography through
``_verify``) so that preflight (``_inventory``) can use the same code without loading an
HTTP or crypto library.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.credops.rotation.plugins.module_utils import _webhook

DEFAULT_SIGNATURE_HEADER = "X-Webhook-Signature"
DEFAULT_SWITCH = {"method": "PATCH", "path": "/v1/webhooks/{id}"}
DEFAULT_TEST = {"method": "POST", "path": "/v1/webhooks/{id}/test"}

# The one argspec of a credential's `sender:` block (documented in the module webhook_sender).
SIGNATURE_ARGSPEC = dict(
    header=dict(type="str", default=DEFAULT_SIGNATURE_HEADER),
    format=dict(type="str", default=_webhook.DEFAULT_HEADER_FORMAT),
    payload_format=dict(type="str", default=_webhook.DEFAULT_PAYLOAD_FORMAT),
)
SIGNATURE_DEFAULTS = dict((k, v["default"]) for k, v in SIGNATURE_ARGSPEC.items())

SENDER_ARGSPEC = dict(
    base_url=dict(type="str", required=True),
    auth=dict(type="dict", required=True, options=dict(
        type=dict(type="str", choices=["bearer", "basic", "header"], default="bearer"),
        token=dict(type="str", no_log=True),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        name=dict(type="str"),
        value=dict(type="str", no_log=True),
    )),
    webhook_id=dict(type="raw", required=True),
    switch=dict(type="dict", required=True, options=dict(
        method=dict(type="str", default=DEFAULT_SWITCH["method"]),
        path=dict(type="str", default=DEFAULT_SWITCH["path"]),
        body=dict(type="raw"),
        form=dict(type="dict"),
        expect_status=dict(type="list", elements="int"),
    )),
    test=dict(type="dict", options=dict(
        method=dict(type="str", default=DEFAULT_TEST["method"]),
        path=dict(type="str", default=DEFAULT_TEST["path"]),
        body=dict(type="raw"),
        expect_status=dict(type="list", elements="int"),
        json=dict(type="dict"),
    )),
    signature=dict(type="dict", options=SIGNATURE_ARGSPEC),
    headers=dict(type="dict"),
    validate_certs=dict(type="bool", default=True),
    ca_path=dict(type="path"),
    timeout=dict(type="float", default=10),
    retries=dict(type="int", default=3),
)


def carries(value, token):
    """Whether the text ``token`` (e.g. ``{secret}``) appears in some string of a JSON-like
    value: a string, or the keys and values of nested mappings and lists."""
    if isinstance(value, str):
        return token in value
    if isinstance(value, dict):
        return any(carries(k, token) or carries(v, token) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(carries(v, token) for v in value)
    return False
