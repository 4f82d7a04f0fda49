# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The declarations every consumer kind makes: its fields, what preflight requires and checks,
where it is deployed, what the dependency map shows of it, how discovery compares it with what
was found, and whether it is verified after a deploy.

Class-level only: preflight, the JSON Schema, the dependency map, drift and the deploy role read
them without constructing anything or importing a client library. The checks preflight shares
(``_inventory.checks``) are passed in as ``check``, so a kind's file imports nothing of preflight.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

#: an environment variable's name (what env_var and the scans of environment files accept)
ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

#: the health check a consumer may have (``verify:``), the same for every kind
VERIFY = dict(
    url=dict(type="str"),
    status=dict(type="raw"),  # a status or a list of them
    json=dict(type="dict"),  # JMESPath -> expected value
    method=dict(type="str"),
    validate_certs=dict(type="bool"),
    ca_path=dict(type="path"),
)


class Consumer(object):
    """One consumer kind (``consumers[].kind``)."""

    kind = None

    #: the consumer's fields, argument-spec shaped (``kind`` among them); what the roles read:
    #: anything else is warned about, and ignored
    FIELDS = {}
    #: the fields preflight requires (the JSON Schema's ``required``)
    REQUIRED = ("name", "kind")
    #: sets of fields of which the consumer needs one
    REQUIRED_ONE_OF = ()
    #: field -> the name of the block its options are (preflight's SPECS, the schema's $defs)
    BLOCKS = {"verify": "verify"}
    #: the field naming the inventory hosts (or groups) the value is deployed on
    TARGET = "hosts"
    #: the fields the dependency map shows beside name, kind and hosts
    MAP_FIELDS = ()
    #: whether the deploy role checks the consumer's ``verify`` endpoint after a deploy
    VERIFIED = True
    #: whether discover_consumers scans this kind (``listed`` and ``drift`` below)
    SCANNED = False

    # --- preflight: problems go to ``report`` (``report.error(path, problem, fix)``) ----------

    @classmethod
    def preflight(cls, report, path, consumer, inventory, claims, check):
        """The kind's own checks of a ``consumer`` mapping (its kind known). ``claims``:
        (host, file, variable) -> the consumer paths that write it (two credentials must not)."""

    @classmethod
    def preflight_with_store(cls, report, path, consumer, store_cls):
        """Checks that need the record's store kind (``store_cls``: its Store class, or None)."""

    @classmethod
    def preflight_with_type(cls, report, path, consumer, ctype, check):
        """Checks that need the credential's type (``ctype``, None when unknown)."""

    @classmethod
    def preflight_with_issuer(cls, report, path, consumer, issuer, issuer_cls, inventory, claims, check):
        """Checks that need the record's issuer block (``issuer``, {} when not a mapping) and its
        Issuer class (``issuer_cls``, None when unknown)."""

    @classmethod
    def claim_webhook_vars(cls, path, consumer, inventory, claims, suffixes, check):
        """The variables webhook_rotate.yml writes beside the consumer's env_var (``suffixes``),
        added to ``claims``, for a kind that can receive webhooks."""

    # --- discovery (discover_consumers.yml): what the map lists against what was found -------

    @classmethod
    def listed(cls, credential, consumer, inventory):
        """The consumer's entries as discovery compares them (one per host, Deployment, ...)."""
        return []

    @classmethod
    def drift(cls, listed, found, by_var, drift, not_scanned):
        """Compare ``listed`` (this kind's entries of every credential) with ``found`` (what the
        scan of this kind found, by host or cluster): append to ``drift``'s ``unlisted``,
        ``missing`` and ``mismatched`` lists, and (kind, host) to ``not_scanned`` for what the
        scan did not reach. ``by_var``: env_var -> the credentials that name it."""
