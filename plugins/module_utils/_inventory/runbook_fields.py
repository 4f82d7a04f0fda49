# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Preflight of the fields the runbooks add to a record (``fields.ADDED_FIELDS``) or a consumer
(declared by its kind): the webhook handshake's sender and delivery logs, key ids beside the
value (id_env_var), the issuer kind's checks that need the store kind too
(``preflight_with_store``), TLS files; and the check that no two credentials write the same
variable of the same file on one host. The checks of a consumer's fields are its kind's
(``_consumers/<kind>.py``): here they are run at their place in the record's order."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.credops.rotation.plugins.module_utils._inventory import checks
from ansible_collections.credops.rotation.plugins.module_utils._inventory.checks import (
    HEADER_NAME, carries, check_api_path, check_auth, check_declared, check_jmespath, check_mapping,
    check_method, check_statuses, check_url,
)
from ansible_collections.credops.rotation.plugins.module_utils._inventory.fields import SPECS
from ansible_collections.credops.rotation.plugins.module_utils._inventory.model import is_int, is_str, show, templated
from ansible_collections.credops.rotation.plugins.module_utils._consumers.registry import consumer_class
from ansible_collections.credops.rotation.plugins.module_utils._issuers.registry import issuer_class
from ansible_collections.credops.rotation.plugins.module_utils._stores.registry import store_class


# --- webhook_rotate.yml: the sender block and the receivers' delivery logs -------------------
# See docs/runbooks/webhook.md and ansible-doc credops.rotation.webhook_sender.

# Suffixes of the env vars webhook_rotate.yml writes beside a receiver's env_var.
WEBHOOK_ENV_SUFFIXES = ("_NEW", "_OLD")


def _webhook_id(report, path, value):
    fix = "give the id of the sender's webhook endpoint that signs with this secret (or a list of ids)"
    if value in (None, "", []):
        report.error(path, "missing", fix)
        return
    for item in value if isinstance(value, list) else [value]:
        if isinstance(item, bool) or not (is_str(item) or is_int(item)):
            report.error(path, "%s is not a webhook id" % show(item), fix)
            return
        if isinstance(item, str) and not templated(item) and any(c in item for c in "/?#{} "):
            report.error(path, "%s has characters an id cannot have ('/', '?', '#', braces, spaces)"
                         % show(item), "give the bare id; the path goes in switch.path / test.path")


def _validate_sender(report, path, sender):
    report.unknown_fields(path, sender, "sender")
    check_url(report, path + ".base_url", sender.get("base_url"), what="sender API's base URL",
              secret_travels="the admin credentials and the new signing secret")
    check_auth(report, path + ".auth", sender.get("auth"),
               "give the sender API's admin credentials, e.g. `auth: {type: bearer, token: \"{{ lookup("
               "'ansible.builtin.env', 'SENDER_ADMIN_TOKEN') }}\"}`")
    _webhook_id(report, path + ".webhook_id", sender.get("webhook_id"))
    switch = sender.get("switch")
    if check_mapping(report, path + ".switch", switch, True,
                     "describe the request that sets the signing secret, e.g. `switch: {method: PATCH, path: "
                     "\"/v1/webhooks/{id}\", body: {secret: \"{secret}\"}}`"):
        spath = path + ".switch"
        report.unknown_fields(spath, switch, "sender.switch")
        check_method(report, spath + ".method", switch.get("method"), "PATCH")
        check_api_path(report, spath + ".path", switch.get("path"), ("id",), example="/v1/webhooks/{id}")
        if "body" in switch and "form" in switch:
            report.error(spath, "both body and form are given", "use body for JSON, form for form-encoded, not both")
        if "form" in switch and not isinstance(switch.get("form"), dict):
            report.error(spath + ".form", "must be a mapping of form fields", "write e.g. `form: {secret: \"{secret}\"}`")
        elif not carries(switch.get("body"), "{secret}") and not carries(switch.get("form"), "{secret}"):
            report.error(spath + ".body", "does not carry the new secret (no \"{secret}\" in body or form)",
                         "write where the secret goes, e.g. `body: {secret: \"{secret}\"}`")
        check_statuses(report, spath + ".expect_status", switch.get("expect_status"))
    test = sender.get("test")
    if check_mapping(report, path + ".test", test, False, "describe the request that makes the sender deliver a test event"):
        tpath = path + ".test"
        report.unknown_fields(tpath, test, "sender.test")
        check_method(report, tpath + ".method", test.get("method"), "POST")
        check_api_path(report, tpath + ".path", test.get("path"), ("id",), example="/v1/webhooks/{id}/test")
        check_statuses(report, tpath + ".expect_status", test.get("expect_status"))
        checks = test.get("json")
        if checks is not None:
            if not isinstance(checks, dict):
                report.error(tpath + ".json", "must be a mapping of JMESPath to expected value",
                             "write e.g. `json: {delivered: true}`")
            else:
                for key in checks:
                    check_jmespath(report, "%s.json[%s]" % (tpath, show(key)), key, example="delivered")
    signature = sender.get("signature")
    if check_mapping(report, path + ".signature", signature, False, "describe how deliveries are signed"):
        gpath = path + ".signature"
        report.unknown_fields(gpath, signature, "sender.signature")
        header = signature.get("header")
        if header is not None and (not is_str(header) or not HEADER_NAME.match(header)):
            report.error(gpath + ".header", "%s is not an HTTP header name" % show(header),
                         "name the header that carries the signature, e.g. `header: X-Webhook-Signature`")
        for field, token, example in (("format", "{signature}", "t={timestamp},v1={signature}"),
                                      ("payload_format", "{payload}", "{timestamp}.{payload}")):
            value = signature.get(field)
            if value is not None and (not isinstance(value, str) or token not in value):
                report.error("%s.%s" % (gpath, field), "%s does not contain %s" % (show(value), token),
                             "write e.g. `%s: \"%s\"`" % (field, example))
    for field in ("timeout", "retries"):
        value = sender.get(field)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            report.error("%s.%s" % (path, field), "%s is not a non-negative number" % show(value),
                         "write e.g. `%s: %s`" % (field, 10 if field == "timeout" else 3))


def _validate_deliveries(report, path, deliveries):
    if not check_mapping(report, path, deliveries, False, "describe the receiver's delivery log: url, list_path, matched_path"):
        return
    report.unknown_fields(path, deliveries, "deliveries")
    check_url(report, path + ".url", deliveries.get("url"), what="delivery-log URL")
    check_jmespath(report, path + ".list_path", deliveries.get("list_path"), required=False, example="deliveries")
    check_jmespath(report, path + ".matched_path", deliveries.get("matched_path"), required=False, example="matched")


def validate_webhook(report, path, record, ctype, inventory, claims):
    """The webhook_rotate.yml fields of one record (nothing to do for records without them)."""
    consumers = record.get("consumers") if isinstance(record.get("consumers"), list) else []
    if "sender" in record:
        sender = record.get("sender")
        if ctype is not None and ctype != "webhook_secret":
            report.error(path + ".sender", "only a webhook_secret has a sender (this is a %s)" % ctype,
                         "remove the sender block, or set type: webhook_secret")
        elif check_mapping(report, path + ".sender", sender, False,
                           "describe the sender's API: base_url, auth, webhook_id, switch, test"):
            _validate_sender(report, path + ".sender", sender)
            check_declared(report, path + ".sender", sender, SPECS["sender"])
            # the handshake writes <env_var>_NEW / <env_var>_OLD beside each receiver's env_var
            for index, consumer, cls in _consumer_kinds(consumers):
                cls.claim_webhook_vars("%s.consumers[%d]" % (path, index), consumer, inventory, claims,
                                       WEBHOOK_ENV_SUFFIXES, checks)
    for index, consumer in enumerate(consumers):
        if isinstance(consumer, dict) and "deliveries" in consumer:
            _validate_deliveries(report, "%s.consumers[%d].deliveries" % (path, index), consumer.get("deliveries"))


def _consumer_kinds(consumers):
    """(index, consumer, its kind's Consumer class) of each consumer of a known kind."""
    for index, consumer in enumerate(consumers):
        cls = consumer_class(consumer.get("kind")) if isinstance(consumer, dict) else None
        if cls is not None:
            yield index, consumer, cls


# --- database and AWS rotation: id_env_var (the consumer kind checks it, the issuer kind says
# whether its ids fit). See docs/runbooks/aws.md and docs/runbooks/database.md.

def validate_ids_and_roles(report, path, record, inventory, claims):
    issuer = record.get("issuer") if isinstance(record.get("issuer"), dict) else {}
    issuer_cls = issuer_class(issuer.get("kind"))
    if issuer_cls is not None:
        store = record.get("store")
        issuer_cls.preflight_with_store(report, path + ".issuer", issuer,
                                        store_class(store.get("kind")) if isinstance(store, dict) else None, checks)
    consumers = record.get("consumers") if isinstance(record.get("consumers"), list) else []
    for index, consumer, cls in _consumer_kinds(consumers):
        cls.preflight_with_issuer(report, "%s.consumers[%d]" % (path, index), consumer, issuer, issuer_cls,
                                  inventory, claims, checks)


def check_claims(report, claims):
    """Two credentials writing the same variable of the same file on the same host overwrite each other."""
    conflicts = [(key, paths) for key, paths in claims.items() if len(paths) > 1]
    for (host, env_file, env_var), paths in sorted(conflicts):
        owners = set(p.split(".consumers[")[0] for p in paths)
        if len(owners) > 1:
            others = ", ".join(paths[:-1])
            report.error(paths[-1] + ".env_var",
                         "%s in %s on host %s is also written by %s" % (env_var, env_file, host, others),
                         "give each credential its own variable (or its own file)")


# --- certificates: consumers that serve TLS (the consumer kind checks its files) ---------------
# See docs/runbooks/certificates.md.

def validate_tls_consumers(report, path, record, ctype):
    consumers = record.get("consumers")
    if not isinstance(consumers, list):
        return
    for index, consumer, cls in _consumer_kinds(consumers):
        cls.preflight_with_type(report, "%s.consumers[%d]" % (path, index), consumer, ctype, checks)
