# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWS Secrets Manager, through boto3, following AWS's own rotation protocol.

- ``current`` is the AWSCURRENT version, ``pending`` the AWSPENDING one, ``previous`` the
  AWSPREVIOUS one. With ``field`` set the SecretString is a JSON object and the value is
  that key (other keys are carried over into each new version); else the whole
  SecretString is the value.
- write_pending: ``PutSecretValue`` with ``VersionStages=[AWSPENDING]``; its
  ClientRequestToken (the VersionId) is derived from the key id, or for issuers without
  ids from a slow salted hash of the value, so a re-run finds its own version again. The
  AWSPREVIOUS of the last finished rotation (a revoked value) is dropped then, so that while
  a rotation is in flight AWSPREVIOUS is only ever its previous value.
  The first version of a new secret is AWSCURRENT too (AWS always makes it so).
- promote: ``UpdateSecretVersionStage`` AWSCURRENT to the pending version (AWS moves
  AWSPREVIOUS to the old one by itself), then AWSPENDING is removed.
- clear_previous (finished): promote if not yet done; AWSPREVIOUS stays on the value rotated
  out (revoked by now), as AWS's own rotation leaves it, until the next rotation's promote
  moves it. In phase finished it is not a previous value any more: reads leave it out, the
  previous_key_id tag goes, and nothing rolls back to it.
- rollback: before promotion, remove AWSPENDING (AWSCURRENT never moved); after it, move
  AWSCURRENT back to the AWSPREVIOUS version and remove AWSPREVIOUS from the rejected one.
- Non-secret metadata lives in the secret's tags, ``credops:<name>``: rotation_phase,
  consumers, last_rotated, key_id / pending_key_id / previous_key_id, rotation_version
  (the VersionId of the value in flight), rotated_at, rotated_by, rotation_verified_at ...
  Tag values may only hold letters, digits, spaces and ``+ - = . _ : / @``: any other
  character is written ``=XX`` (its UTF-8 bytes in hex, ``=`` itself as ``=3D``), so
  consumers ``web-app,mobile-backend`` reads ``web-app=2Cmobile-backend`` in the console.
- Labels are moved before the tags are written, and an AWSPENDING version always counts as
  a rotation in flight, so a run stopped half-way is finished by the next one. Secrets
  Manager has no check-and-set: the labels are read again just before they are moved, and
  the run stops if another writer changed them in between.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import hashlib
import json
import os
import re

from ansible_collections.credops.rotation.plugins.module_utils._clients.aws import (
    aws_client,
    aws_session,
    boto3,
    botocore_exceptions,
)
from ansible_collections.credops.rotation.plugins.module_utils._errors import scrub
from ansible_collections.credops.rotation.plugins.module_utils._stores._base import (
    DATA_FIELDS,
    IN_FLIGHT,
    Store,
    empty_state,
)
from ansible_collections.credops.rotation.plugins.module_utils._time import normalize_time


CURRENT, PENDING, PREVIOUS = "AWSCURRENT", "AWSPENDING", "AWSPREVIOUS"
LABELS = ((CURRENT, "current"), (PENDING, "pending"), (PREVIOUS, "previous"))
TAG_PREFIX = "credops:"
# tags that follow from the labels / transitions, not caller metadata
ID_TAGS = {"current": "key_id", "pending": "pending_key_id", "previous": "previous_key_id"}
SYSTEM_TAGS = ("rotation_phase", "rotation_version") + tuple(ID_TAGS.values())
TOKEN_PREFIX = "credops-"
PBKDF2_ROUNDS = 100000
_TAG_SAFE = re.compile(r"[A-Za-z0-9 +\-.:_/@]")
_NEW = "<new version>"

PERMISSIONS = ("secretsmanager:DescribeSecret, GetSecretValue, ListSecretVersionIds, "
               "PutSecretValue, UpdateSecretVersionStage, CreateSecret, TagResource and "
               "UntagResource")


def encode_tag(text):
    """A string as a Secrets Manager tag value: unsafe characters as =XX (UTF-8 hex)."""
    out = []
    for char in str(text):
        if _TAG_SAFE.match(char):
            out.append(char)
        else:
            out.extend("=%02X" % byte for byte in bytearray(char.encode("utf-8")))
    return "".join(out)


def decode_tag(text):
    """The inverse of encode_tag; text that is not =XX-encoded is returned as it is."""
    raw = bytearray()
    i = 0
    text = str(text)
    while i < len(text):
        chunk = text[i:i + 3]
        if text[i] == "=" and re.match(r"=[0-9A-F]{2}$", chunk):
            raw.append(int(chunk[1:], 16))
            i += 3
        else:
            raw.extend(text[i].encode("utf-8"))
            i += 1
    return raw.decode("utf-8", "replace")


def fit_tag(text, limit=256):
    """The longest start of ``text`` whose tag encoding fits ``limit`` characters."""
    text = str(text)[:limit]
    while len(encode_tag(text)) > limit:
        text = text[:-1]
    return text


def version_token(secret_id, key_id=None, value=None):
    """The deterministic ClientRequestToken / VersionId of a value (32-64 characters).

    From the key id when there is one; else a PBKDF2 hash of the value salted with the
    secret's id (so the VersionId, which anyone with DescribeSecret sees, does not make
    guessing the value cheap).
    """
    if key_id:
        digest = hashlib.sha256(("credops.rotation/v1/id/%s/%s" % (secret_id, key_id))
                                .encode("utf-8")).hexdigest()
    else:
        digest = binascii.hexlify(hashlib.pbkdf2_hmac(
            "sha256", str(value).encode("utf-8"),
            ("credops.rotation/v1/value/%s" % secret_id).encode("utf-8"), PBKDF2_ROUNDS)).decode()
    return TOKEN_PREFIX + digest[:40]


# A secret's name or ARN, as Secrets Manager accepts it.
_SECRET_ID = re.compile(r"^(arn:[\w-]+:secretsmanager:[\w-]+:\d{12}:secret:)?[\w/+=.@-]{1,512}$")


class AwsSecretsManagerStore(Store):
    kind = "aws_secretsmanager"
    # without field the whole SecretString is the value
    FIELDS = ("secret_id", "region", "endpoint_url", "profile", "field", "validate_certs", "ca_cert", "timeout")
    REQUIRED = ("secret_id",)
    VERSION_IDS_FROM_KEY_ID = True
    EXTERNAL_SECRET_PROBLEM = ("an ExternalSecret reads AWSCURRENT, but with an aws_secretsmanager store the new "
                               "value is AWSPENDING until every consumer verified it")

    @classmethod
    def preflight(cls, report, path, block, check):
        secret_id = block.get("secret_id")
        if check.required_str(report, path + ".secret_id", secret_id,
                              "name the secret, e.g. `secret_id: payment-gateway-api` (a name or an ARN)"):
            if not _SECRET_ID.match(secret_id):
                report.error(path + ".secret_id", "%s is not a Secrets Manager name or ARN" % check.show(secret_id),
                             "use letters, digits and /_+=.@- (or the secret's full ARN)")
    library = "boto3"
    pending_is_current = False

    def __init__(self, config, credential):
        super(AwsSecretsManagerStore, self).__init__(config, credential)
        self.secret_id = self.config.get("secret_id")
        self.field = self.config.get("field") or None
        self._client = None
        self._token_cache = {}
        if not self.secret_id:
            raise self.error("store.secret_id is not set",
                             fix="set store.secret_id to the secret's name or ARN, e.g. %s."
                                 % (credential or "NAME"))

    @staticmethod
    def missing_library():
        """("boto3", traceback) when boto3 cannot be imported, else None."""
        error = boto3.import_error()
        return ("boto3", error) if error else None

    def describe(self):
        return "secret %s" % self.secret_id

    # -- connection -----------------------------------------------------------------------
    def client(self):
        if self._client is not None:
            return self._client
        self.client_settings(boto3, "boto3")
        cfg = self.config
        # the store's names on amazon.aws's: ca_cert is aws_ca_bundle
        options = dict(profile=cfg.get("profile"),
                       region=cfg.get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
                       endpoint_url=cfg.get("endpoint_url"), validate_certs=cfg.get("validate_certs"),
                       aws_ca_bundle=cfg.get("ca_cert"), timeout=cfg.get("timeout") or 30)

        def make():
            return aws_client(aws_session(options), "secretsmanager", options, max_attempts=3)

        self._client = self._call("connecting", make)
        return self._client

    def _call(self, what, func, *args, **kwargs):
        secrets = list(kwargs.pop("_secrets", ()))
        missing_ok = kwargs.pop("_missing_ok", False)
        try:
            return func(*args, **kwargs)
        except botocore_exceptions.ClientError as exc:
            err = exc.response.get("Error", {})
            code = err.get("Code", "")
            text = scrub(err.get("Message", exc), secrets)
            if code == "ResourceNotFoundException" and missing_ok:
                return None
            if code in ("AccessDeniedException", "AccessDenied"):
                raise self.error("permission denied while %s: %s" % (what, text),
                                 fix="the AWS identity needs %s on the secret (IAM or the "
                                     "secret's resource policy)." % PERMISSIONS)
            if code in ("UnrecognizedClientException", "InvalidSignatureException",
                        "ExpiredTokenException", "InvalidClientTokenId"):
                raise self.error("AWS rejected the credentials while %s (%s)" % (what, code),
                                 fix="refresh the AWS credentials (AWS_ACCESS_KEY_ID / "
                                     "AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN or store.profile).")
            if code == "ResourceNotFoundException":
                raise self.error("not found while %s" % what,
                                 fix="check store.secret_id and store.region.")
            if code == "InvalidRequestException" and "deletion" in text.lower():
                raise self.error("the secret is scheduled for deletion (%s)" % what,
                                 fix="restore it (aws secretsmanager restore-secret) or use "
                                     "another secret_id.")
            raise self.error("AWS error %s while %s: %s" % (code, what, text),
                             fix="see the AWS message above; re-run once it is fixed.")
        except botocore_exceptions.NoCredentialsError:
            raise self.error("no AWS credentials found while %s" % what,
                             fix="set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, store.profile, "
                                 "or run where an instance / pod role is available.")
        except botocore_exceptions.NoRegionError:
            raise self.error("no AWS region while %s" % what,
                             fix="set store.region or AWS_REGION / AWS_DEFAULT_REGION.")
        except botocore_exceptions.ProfileNotFound as exc:
            raise self.error("AWS profile not found while %s: %s" % (what, exc),
                             fix="fix store.profile / AWS_PROFILE.")
        except (botocore_exceptions.EndpointConnectionError,
                botocore_exceptions.ConnectTimeoutError,
                botocore_exceptions.ReadTimeoutError) as exc:
            raise self.error("cannot reach Secrets Manager while %s (%s)" % (what, type(exc).__name__),
                             fix="check store.region / store.endpoint_url (AWS_ENDPOINT_URL) and "
                                 "the network path to the endpoint.")
        except botocore_exceptions.SSLError as exc:
            raise self.error("TLS verification failed while %s: %s" % (what, scrub(exc, secrets)),
                             fix="set store.ca_cert to the CA bundle of the endpoint.")
        except botocore_exceptions.BotoCoreError as exc:
            raise self.error("error while %s: %s" % (what, scrub(exc, secrets)),
                             fix="check the store settings (region, endpoint_url, profile).")

    # -- values and tokens ----------------------------------------------------------------
    def token(self, key_id=None, value=None):
        key = ("id", key_id) if key_id else ("value", value)
        if key not in self._token_cache:
            self._token_cache[key] = version_token(self.secret_id, key_id, value)
        return self._token_cache[key]

    def _extract(self, secret_string):
        if secret_string is None or not self.field:
            return secret_string
        try:
            obj = json.loads(secret_string)
        except ValueError:
            raise self.error("the SecretString is not JSON but store.field is set to '%s'" % self.field,
                             fix="drop store.field to use the whole SecretString, or store a "
                                 "JSON object.")
        if not isinstance(obj, dict):
            raise self.error("the SecretString is not a JSON object but store.field is set",
                             fix="drop store.field, or store a JSON object.")
        value = obj.get(self.field)
        if value is not None and not isinstance(value, str):
            value = json.dumps(value)
        return value

    def _compose(self, value, base_string):
        if not self.field:
            return value
        obj = {}
        if base_string:
            try:
                obj = json.loads(base_string)
            except ValueError:
                obj = {}
            if not isinstance(obj, dict):
                obj = {}
        obj[self.field] = value
        return json.dumps(obj)

    # -- read -----------------------------------------------------------------------------
    def _load(self):
        sm = self.client()
        desc = self._call("describing the secret", sm.describe_secret, SecretId=self.secret_id,
                          _missing_ok=True)
        raw = dict(exists=False, labels={}, strings={}, tags={}, other_tags=[])
        if desc is None:
            state = empty_state()
            state["_raw"] = raw
            return state
        labels = {}
        for vid, stages in (desc.get("VersionIdsToStages") or {}).items():
            for stage in stages or ():
                labels[stage] = vid
        tags = {}
        for tag in desc.get("Tags") or ():
            if tag.get("Key", "").startswith(TAG_PREFIX):
                tags[decode_tag(tag["Key"][len(TAG_PREFIX):])] = decode_tag(tag.get("Value", ""))
        strings, created = {}, {}
        for label, _slot in LABELS:
            vid = labels.get(label)
            if vid and vid not in strings:
                resp = self._call("reading the %s version" % label, sm.get_secret_value,
                                  SecretId=self.secret_id, VersionId=vid)
                if resp.get("SecretString") is None:
                    raise self.error("the %s version holds binary data" % label,
                                     fix="credops.rotation stores text values (SecretString).")
                strings[vid] = resp["SecretString"]
                created[vid] = resp.get("CreatedDate")
        raw.update(exists=True, labels=labels, strings=strings, tags=tags,
                   name=desc.get("Name"))
        return self._state(raw, desc, created)

    def _id_for(self, slot, vid, value, tags):
        candidates = [tags[t] for t in ID_TAGS.values() if tags.get(t)]
        for candidate in candidates:
            if self.token(candidate) == vid:
                return candidate
        if vid.startswith(TOKEN_PREFIX) and value is not None and self.token(None, value) == vid:
            return None
        return tags.get(ID_TAGS[slot]) or None

    def _state(self, raw, desc, created):
        labels, tags = raw["labels"], raw["tags"]
        state = empty_state()
        state["exists"] = True
        for label, slot in LABELS:
            vid = labels.get(label)
            if vid:
                value = self._extract(raw["strings"].get(vid))
                state[slot] = value
                state[slot + "_id"] = self._id_for(slot, vid, value, tags)
        phase = tags.get("rotation_phase") or None
        rotation_version = tags.get("rotation_version") or None
        if phase == "finished" and not labels.get(PENDING):
            # AWSPREVIOUS names the value rotated out, revoked by now: kept as AWS's own
            # rotation keeps it, but no longer a previous value (as in KV v2)
            state["previous"] = state["previous_id"] = None
        if labels.get(PENDING) and phase not in IN_FLIGHT:
            # an AWSPENDING version is a rotation in flight, whatever the tags say (a run
            # stopped between writing the value and the tags, or AWS's own rotation)
            phase, rotation_version = "pending", labels[PENDING]
        if phase in IN_FLIGHT:
            if rotation_version:
                if labels.get(PENDING) == rotation_version:
                    state["inflight"] = "pending"
                elif labels.get(CURRENT) == rotation_version:
                    state["inflight"] = "current"
            else:
                state["inflight"] = "pending" if labels.get(PENDING) else "current"
        state["phase"] = phase
        state["metadata"] = dict((k, v) for k, v in tags.items()
                                 if k not in SYSTEM_TAGS and k not in DATA_FIELDS)
        state["data"] = dict((k, v) for k, v in tags.items() if k in DATA_FIELDS)
        current_vid = labels.get(CURRENT)
        state["created_time"] = normalize_time(created.get(current_vid)) if current_vid else None
        state["last_rotated"] = (normalize_time(tags.get("last_rotated")) or normalize_time(desc.get("LastRotatedDate"))
                                 or state["created_time"] or normalize_time(desc.get("LastChangedDate")))
        state["version"] = current_vid
        raw["rotation_version"] = rotation_version
        state["_raw"] = raw
        return state

    # -- write ----------------------------------------------------------------------------
    def _desired(self, before, after):
        """(labels: label -> VersionId or _NEW or None, tags: name -> str)."""
        raw = before.get("_raw") or {}
        known = {}
        for label, slot in LABELS:
            vid = raw.get("labels", {}).get(label)
            if vid and before.get(slot) is not None:
                known.setdefault((before[slot], before.get(slot + "_id")), vid)
        labels = {}
        for label, slot in LABELS:
            value = after.get(slot)
            if value is None:
                labels[label] = None
            else:
                labels[label] = known.get((value, after.get(slot + "_id")), _NEW)
        have = raw.get("labels", {})
        if labels[CURRENT] is None:
            labels[CURRENT] = have.get(CURRENT)  # AWSCURRENT never goes away
        if after.get("phase") == "finished" and labels[PREVIOUS] is None:
            # as AWS's own rotation leaves it: the value rotated out keeps AWSPREVIOUS
            labels[PREVIOUS] = have.get(CURRENT) if labels[CURRENT] != have.get(CURRENT) else have.get(PREVIOUS)
        rotation_version = None
        if after.get("phase") in IN_FLIGHT:
            slot = after.get("inflight")
            if slot == "pending":
                rotation_version = labels[PENDING]
            elif slot == "current":
                rotation_version = labels[CURRENT]
            else:
                rotation_version = raw.get("rotation_version")
            if rotation_version == _NEW:
                rotation_version = self.token(after.get("pending_id"), after.get("pending"))
        tags = {}
        tags.update(after.get("metadata") or {})
        tags.update(after.get("data") or {})
        tags["rotation_phase"] = after.get("phase")
        tags["rotation_version"] = rotation_version
        for slot, name in ID_TAGS.items():
            tags[name] = after.get(slot + "_id")
        # tag values hold 256 characters: a long note (a rollback reason) is cut, not refused
        tags = dict((k, fit_tag(v)) for k, v in tags.items() if v is not None and v != "")
        return labels, tags

    def _in_sync(self, before, after):
        raw = before.get("_raw") or {}
        if not raw.get("exists"):
            return False
        labels, tags = self._desired(before, after)
        have = raw.get("labels", {})
        if any(labels[label] != have.get(label) for label, _slot in LABELS):
            return False
        return tags == raw.get("tags")

    def _fresh_labels(self):
        desc = self._call("describing the secret", self.client().describe_secret,
                          SecretId=self.secret_id)
        labels = {}
        for vid, stages in (desc.get("VersionIdsToStages") or {}).items():
            for stage in stages or ():
                labels[stage] = vid
        return labels

    def _check_labels(self, expected):
        """The labels as they are now; fails if they are not ``expected`` (no check-and-set in
        Secrets Manager: this is as close as it gets)."""
        have = self._fresh_labels()
        if any(have.get(label) != expected.get(label) for label, _slot in LABELS):
            raise self.error("the staging labels changed while this run was writing (another "
                             "rotation at the same time?)",
                             fix="make sure only one run rotates this credential, then re-run.")
        return have

    def _apply(self, before, after):
        sm = self.client()
        raw = before.get("_raw") or {}
        secrets = [before.get("current"), before.get("pending"), before.get("previous"),
                   after.get("pending")]
        labels, tags = self._desired(before, after)
        expected = dict(raw.get("labels") or {})
        have = {}
        if not raw.get("exists"):
            self._call("creating the secret", sm.create_secret, Name=self.secret_id,
                       Description="Managed by credops.rotation (credential %s)" % self.credential)
        else:
            have = self._check_labels(expected)
        if _NEW in labels.values():
            value, key_id = after.get("pending"), after.get("pending_id")
            if value is None or labels[PENDING] != _NEW:
                raise self.error("internal: a new version is only ever written as AWSPENDING")
            token = self.token(key_id, value)
            base = raw.get("strings", {}).get(raw.get("labels", {}).get(CURRENT))
            if self._put_pending(token, self._compose(value, base), value, secrets):
                expected[PENDING] = token
                if not raw.get("labels", {}).get(CURRENT):
                    expected[CURRENT] = token
            labels = dict((k, token if v == _NEW else v) for k, v in labels.items())
            have = self._check_labels(expected)
        for label in (CURRENT, PENDING, PREVIOUS):
            want, got = labels.get(label), have.get(label)
            if want == got:
                continue
            if want is None:
                self._call("removing %s" % label, sm.update_secret_version_stage,
                           SecretId=self.secret_id, VersionStage=label, RemoveFromVersionId=got)
            else:
                kwargs = dict(SecretId=self.secret_id, VersionStage=label, MoveToVersionId=want)
                if got:
                    kwargs["RemoveFromVersionId"] = got
                self._call("moving %s" % label, sm.update_secret_version_stage, **kwargs)
            if label == CURRENT:
                have = self._fresh_labels()  # AWS moved AWSPREVIOUS by itself
        self._write_tags(sm, raw.get("tags") or {}, tags)

    def _put_pending(self, token, secret_string, value, secrets):
        """Write the AWSPENDING version; False if a version with this token already exists."""
        sm = self.client()
        exists, kwargs = False, dict(SecretId=self.secret_id, IncludeDeprecated=True, MaxResults=100)
        for _page in range(50):  # at most 5000 versions; AWS keeps about 100
            resp = self._call("listing versions", sm.list_secret_version_ids, **kwargs)
            if any(v.get("VersionId") == token for v in resp.get("Versions") or ()):
                exists = True
                break
            if not resp.get("NextToken"):
                break
            kwargs["NextToken"] = resp["NextToken"]
        if exists:
            # written before (an interrupted run, or a value rolled back and written again)
            resp = self._call("reading version %s" % token, sm.get_secret_value,
                              SecretId=self.secret_id, VersionId=token)
            if self._extract(resp.get("SecretString")) != value:
                raise self.error("version %s already holds a different value for this key id" % token,
                                 fix="issue a value with a new key id.")
            return False
        self._call("writing the pending value (AWSPENDING)", sm.put_secret_value,
                   SecretId=self.secret_id, ClientRequestToken=token, SecretString=secret_string,
                   VersionStages=[PENDING], _secrets=secrets)
        return True

    def _write_tags(self, sm, have, want):
        for key in want:
            if len(TAG_PREFIX + encode_tag(key)) > 128:
                raise self.error("metadata name '%s' is too long for a Secrets Manager tag key" % key,
                                 fix="use metadata names under 100 characters.")
        put = [{"Key": TAG_PREFIX + encode_tag(k), "Value": encode_tag(v)}
               for k, v in sorted(want.items()) if have.get(k) != v]
        drop = [TAG_PREFIX + encode_tag(k) for k in sorted(have) if k not in want]
        if drop:
            self._call("removing tags", sm.untag_resource, SecretId=self.secret_id, TagKeys=drop)
        if put:
            self._call("writing tags", sm.tag_resource, SecretId=self.secret_id, Tags=put)
