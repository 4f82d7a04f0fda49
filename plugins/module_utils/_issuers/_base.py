# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The issuer interface every kind implements, and the few helpers they share."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib

from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError, scrub


def fingerprint(secret):
    """A short, non-secret name for a value (sha256 prefix) that audits can refer to."""
    if secret is None:
        return None
    if not isinstance(secret, bytes):
        secret = str(secret).encode("utf-8")
    return hashlib.sha256(secret).hexdigest()[:12]


class Issuer(object):
    """One issuer kind.

    ``config`` is the credential's ``issuer`` mapping from the inventory (kind removed),
    ``credential`` its name (for error messages). Methods never log secret values.
    """

    kind = None
    #: whether the issuer gives its keys ids (False: the value is its own identity)
    has_ids = True
    #: whether revoke() has any meaning (generated values are dropped, not revoked)
    can_revoke = True

    # --- what the kind declares (read by preflight, the schema, the modules and the roles;
    # class-level, so nothing is constructed and no library is imported to read them) ---------

    #: the credential types (the record's ``type``) this kind can issue
    TYPES = ()
    #: the fields preflight requires in the issuer block (the JSON Schema's ``required``)
    REQUIRED = ("kind",)
    #: sets of fields of which the block needs one (e.g. postgres: ``role`` or ``roles``)
    REQUIRED_ONE_OF = ()
    #: sub-blocks whose known fields are all that is accepted (their options are in ARGSPEC)
    CLOSED_BLOCKS = ()
    #: the fields each of those sub-blocks requires
    BLOCK_REQUIRED = {}
    #: defaults the contract fills in (``normalize``), by field
    DEFAULTS = {}

    @classmethod
    def preflight(cls, report, path, block, check):
        """The kind's own preflight checks of an issuer ``block`` (a mapping, kind known):
        problems go to ``report`` (``report.error(path, problem, fix)``), named by ``path``.
        ``check`` is the module of shared field checks (``_inventory.checks``), passed in so
        the kind's file imports nothing of preflight."""

    @classmethod
    def preflight_with_store(cls, report, path, block, store_cls, check):
        """The kind's checks that need the record's store kind too (``store_cls``: its Store class,
        or None when the store block is not a mapping); run with the runbook fields' checks."""

    @classmethod
    def normalize(cls, block):
        """Fill the contract's defaults into an issuer ``block`` (in place)."""
        for name, value in cls.DEFAULTS.items():
            block.setdefault(name, value)

    @classmethod
    def key_ids_unfit(cls, block):
        """None when every new value has an id a consumer can use (id_env_var), else why not."""
        return None

    @classmethod
    def stored_facts(cls, key_id, info):
        """Non-secret facts the store keeps beside a new value: dict(metadata=..., data=...),
        from issue_key's ``key_id`` and ``info`` (empty in check mode)."""
        return dict(metadata={}, data={})

    @classmethod
    def public_values(cls, info):
        """Public values of a new key the deploy step uses beside it (e.g. a certificate), or {}."""
        return {}

    @classmethod
    def replaces_in_place(cls, block):
        """True when ``create`` replaced the previous value at the issuer, so a roll back restores
        it there first (``restore``), before the store and the consumers get it back."""
        return False

    @classmethod
    def previous_record(cls, block, key_id):
        """The unauthenticated HTTP request (url, headers, validate_certs, ca_path) that reads
        the public record of ``key_id`` back from the issuer on a roll back, or None."""
        return None

    def __init__(self, config, credential):
        self.config = config or {}
        self.credential = credential
        #: what the module should tell the user (retries, ...), never a secret
        self.warnings = []

    def error(self, message, step=None, fix=None, secrets=()):
        """A RotationError naming this credential; ``secrets`` are scrubbed from the message."""
        return RotationError(scrub(message, secrets), credential=self.credential, step=step,
                             fix=scrub(fix, secrets) if fix else None)

    def require(self, name, value=None, field=None):
        """The config value ``name`` (or ``value``), or a preflight error naming the field."""
        value = self.config.get(name) if value is None else value
        if value is None or value == "" or value == [] or value == {}:
            raise self.error("issuer.%s is required for kind %s." % (field or name, self.kind),
                             step="preflight",
                             fix="set issuer.%s in the credential's issuer block." % (field or name))
        return value

    def create(self):
        """Make a new value. Returns dict(id=..., secret=..., info={non-secret facts})."""
        raise NotImplementedError

    def revoke(self, key_id, secret=None, force=False):
        """Revoke a value. Returns True if it changed something, False if already gone.

        ``force``: revoke even where the issuer says the value is still its current one
        (emergencies; only kinds that can tell, e.g. postgres, look at it)."""
        raise NotImplementedError

    def restore(self, secret):
        """Rollback: make ``secret`` (the previous value) work again at the issuer. Only kinds
        whose ``create`` invalidated the previous value (postgres) have anything to do; for the
        others it stays valid until revoked. Returns True if it changed something."""
        return False

    def exists(self, key_id):
        """True if the key id is still active at the issuer, False if not, None if unknown
        (check mode / idempotence)."""
        raise NotImplementedError

    def test(self, secret, key_id=None):
        """True if the value is accepted by the issuer, False if rejected, None if untestable.

        ``key_id`` is given where the issuer needs it to test (aws_iam: the access key id)."""
        return None

    def usage(self, key_id, since):
        """Uses of key_id since an ISO-8601 time: a list of dict(time=..., source=...),
        or None when the issuer keeps no such record."""
        return None
