# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kind: generated: no issuer; a high-entropy value made here (webhook secrets, shared passwords).

Drawn with the ``secrets`` module (the OS CSPRNG), one character at a time, uniformly
from the alphabet. A value has no id of its own: its id is a short non-secret
fingerprint (sha256 prefix) so audits can refer to it. There is nothing to revoke: the
old value dies when the store and the consumers forget it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import secrets
import string

from ansible_collections.credops.rotation.plugins.module_utils._issuers._base import Issuer, fingerprint

ARGSPEC = dict(
    length=dict(type="int"),
    alphabet=dict(type="str"),
    prefix=dict(type="str"),
)

ALPHABETS = {
    "urlsafe": string.ascii_letters + string.digits + "-_",
    "hex": "0123456789abcdef",
    "alnum": string.ascii_letters + string.digits,
}
DEFAULT_LENGTH = 48
#: the shortest length preflight accepts
MIN_LENGTH = 16
MIN_BITS = 128


def resolve_alphabet(alphabet):
    """A named alphabet, or the distinct characters of a custom one (order kept)."""
    if alphabet in ALPHABETS:
        return ALPHABETS[alphabet]
    seen = []
    for char in alphabet or "":
        if char not in seen:
            seen.append(char)
    return "".join(seen)


def entropy_bits(length, alphabet):
    return length * math.log2(len(alphabet)) if len(alphabet) > 1 else 0.0


class GeneratedIssuer(Issuer):
    kind = "generated"
    ARGSPEC = ARGSPEC
    TYPES = ("api_key", "oauth_client_secret", "service_account_token", "database", "webhook_secret")

    @classmethod
    def preflight(cls, report, path, block, check):
        length = block.get("length")
        if length is not None and not (check.is_int(length) and length >= MIN_LENGTH):
            report.error(path + ".length", "%s is too short or not a number" % check.show(length),
                         "use at least %d characters (32 or more for secrets a machine checks)" % MIN_LENGTH)
        alphabet = block.get("alphabet")
        if alphabet is not None and (not isinstance(alphabet, str) or len(set(alphabet)) < 2):
            report.error(path + ".alphabet", "must be a non-empty string of at least two distinct characters "
                         "(or an alphabet name)", "remove it for the default, or write e.g. `alphabet: hex`")

    @classmethod
    def key_ids_unfit(cls, block):
        return "a generated value has no key id"
    has_ids = False
    can_revoke = False

    def __init__(self, config, credential):
        super(GeneratedIssuer, self).__init__(config, credential)
        self.alphabet_name = self.config.get("alphabet") or "urlsafe"
        self.alphabet = resolve_alphabet(self.alphabet_name)
        self.length = self.config.get("length")
        if self.length is None:
            self.length = DEFAULT_LENGTH
        self.prefix = self.config.get("prefix") or ""
        if len(self.alphabet) < 2:
            raise self.error("issuer.alphabet must be urlsafe, hex, alnum, or a string of at least 2 distinct "
                             "characters.", step="preflight", fix="correct issuer.alphabet.")
        bits = entropy_bits(self.length, self.alphabet)
        if bits < MIN_BITS:
            raise self.error("issuer.length %d over an alphabet of %d characters gives %d bits of entropy; at least "
                             "%d are needed." % (self.length, len(self.alphabet), bits, MIN_BITS), step="preflight",
                             fix="raise issuer.length to at least %d." % math.ceil(MIN_BITS / math.log2(len(self.alphabet))))

    def create(self):
        value = self.prefix + "".join(secrets.choice(self.alphabet) for _index in range(self.length))
        return dict(id=fingerprint(value), secret=value, info=dict(
            length=self.length, alphabet=self.alphabet_name if self.alphabet_name in ALPHABETS else "custom",
            entropy_bits=int(entropy_bits(self.length, self.alphabet)), prefix=self.prefix or None))

    def revoke(self, key_id, secret=None, force=False):
        return False

    def exists(self, key_id):
        return None
