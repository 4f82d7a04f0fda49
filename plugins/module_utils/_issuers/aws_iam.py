# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kind: aws_iam: an IAM user's access key pair.

The id is the AccessKeyId, the secret the SecretAccessKey. AWS allows two keys per user,
which is what makes a rotation with overlap possible: this issuer never deletes an active
key to make room (``delete_inactive: true`` lets it delete an *inactive* one). A new key
is waited on (bounded by ``wait_timeout``) until STS accepts it as the user: IAM is
eventually consistent and a key handed out too early fails at the consumer.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
import time

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.credops.rotation.plugins.module_utils._clients.aws import (
    aws_client,
    aws_session,
    boto3,
    botocore_exceptions,
)
from ansible_collections.credops.rotation.plugins.module_utils._issuers._base import Issuer
from ansible_collections.credops.rotation.plugins.module_utils._poll import poll_until
from ansible_collections.credops.rotation.plugins.module_utils._time import format_time, parse_time

ARGSPEC = dict(
    user_name=dict(type="str"),
    delete_inactive=dict(type="bool"),
    revoke_mode=dict(type="str", choices=["delete", "deactivate"]),
    endpoint_url=dict(type="str"),
    region=dict(type="str"),
    profile=dict(type="str"),
    access_key=dict(type="str", no_log=False),
    secret_key=dict(type="str", no_log=True),
    session_token=dict(type="str", no_log=True),
    wait_timeout=dict(type="int"),
)

# What IAM accepts as a user name.
_IAM_USER = re.compile(r"^[\w+=,.@-]{1,64}$")

# Answers of STS that mean "this key is not (or not yet) accepted".
_REJECTED = ("InvalidClientTokenId", "SignatureDoesNotMatch", "UnrecognizedClientException",
             "AuthFailure", "ExpiredToken", "InvalidAccessKeyId")

_FIXES = {
    "NoSuchEntity": "check issuer.user_name: the IAM user does not exist in this account.",
    "AccessDenied": ("give the identity that runs the rotation iam:ListAccessKeys, iam:CreateAccessKey, "
                     "iam:UpdateAccessKey, iam:DeleteAccessKey and iam:GetAccessKeyLastUsed on the user."),
    "LimitExceeded": "the user has two access keys already: see the two-key limit in the README.",
    "InvalidClientTokenId": "the AWS credentials the rotation runs with are not valid in this account.",
    "SignatureDoesNotMatch": "the AWS secret key the rotation runs with is wrong.",
    "ExpiredToken": "the AWS session the rotation runs with has expired: refresh it.",
    "Throttling": "AWS is throttling the calls: try again later.",
}


class AwsIamIssuer(Issuer):
    kind = "aws_iam"
    ARGSPEC = ARGSPEC
    TYPES = ("api_key", "service_account_token")
    REQUIRED = ("kind", "user_name")

    @classmethod
    def preflight(cls, report, path, block, check):
        if check.required_str(report, path + ".user_name", block.get("user_name"),
                              "name the IAM user whose access keys are rotated, e.g. "
                              "`user_name: integration-service-account`"):
            if not _IAM_USER.match(block["user_name"]):
                report.error(path + ".user_name", "%s is not a valid IAM user name" % check.show(block["user_name"]),
                             "use up to 64 letters, digits and +=,.@_-")

    def __init__(self, config, credential):
        super(AwsIamIssuer, self).__init__(config, credential)
        if boto3.import_error():
            raise self.error(missing_required_lib("boto3"), step="preflight",
                             fix="install boto3 where the module runs (pip install boto3).")
        self.user_name = self.require("user_name")
        self.revoke_mode = self.config.get("revoke_mode") or "delete"
        self.wait_timeout = self.config.get("wait_timeout")
        if self.wait_timeout is None:
            self.wait_timeout = 60
        self._secrets = [self.config.get("secret_key"), self.config.get("session_token")]
        self.sleep = time.sleep
        self._session = None
        self._iam = None

    # --- clients ---------------------------------------------------------------------------
    def _client_options(self, session):
        """The client options, named as amazon.aws names them (_clients/aws.py)."""
        ca_path = self.config.get("ca_path")
        return dict(region=self.config.get("region") or session.region_name or "us-east-1",
                    endpoint_url=self.config.get("endpoint_url"),
                    # a CA bundle given is verified against, even with validate_certs false
                    aws_ca_bundle=ca_path, validate_certs=True if ca_path else self.config.get("validate_certs"),
                    timeout=float(self.config.get("timeout") or 10))

    def _iam_client(self, step):
        if self._iam is None:
            retries = self.config.get("retries")
            try:
                self._session = aws_session(self.config)
                self._iam = aws_client(self._session, "iam", self._client_options(self._session),
                                       max_attempts=1 + (3 if retries is None else int(retries)))
            except (botocore_exceptions.BotoCoreError, ValueError) as exc:
                raise self._aws_error(exc, step, "connect to IAM")
        return self._iam

    def _sts_as(self, key_id, secret):
        session = aws_session(dict(access_key=key_id, secret_key=secret))
        return aws_client(session, "sts", self._client_options(self._session or session), max_attempts=1)

    def _aws_error(self, exc, step, action, secrets=()):
        secrets = list(self._secrets) + list(secrets)
        if isinstance(exc, botocore_exceptions.ClientError):
            err = exc.response.get("Error", {})
            code = err.get("Code", "Unknown")
            return self.error("AWS refused to %s for IAM user '%s': %s: %s" % (
                action, self.user_name, code, err.get("Message", "")), step=step, secrets=secrets,
                fix=_FIXES.get(code, "see the AWS error above."))
        if isinstance(exc, botocore_exceptions.NoCredentialsError):
            return self.error("no AWS credentials to %s for IAM user '%s'." % (action, self.user_name),
                              step=step, fix="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE where "
                              "the module runs, or issuer.profile or issuer.access_key and issuer.secret_key.")
        return self.error("could not %s for IAM user '%s': %s" % (action, self.user_name, exc), step=step,
                          secrets=secrets, fix="check issuer.endpoint_url, issuer.region and the network path to AWS.")

    @staticmethod
    def _code(exc):
        return exc.response.get("Error", {}).get("Code") if isinstance(exc, botocore_exceptions.ClientError) else None

    def _keys(self, step):
        try:
            return self._iam_client(step).list_access_keys(UserName=self.user_name)["AccessKeyMetadata"]
        except (botocore_exceptions.BotoCoreError, botocore_exceptions.ClientError) as exc:
            raise self._aws_error(exc, step, "list the access keys")

    # --- the interface ---------------------------------------------------------------------
    def create(self):
        iam = self._iam_client("issue")
        keys = self._keys("issue")
        deleted = None
        if len(keys) >= 2:
            inactive = sorted((k for k in keys if k.get("Status") == "Inactive"),
                              key=lambda k: k.get("CreateDate") or 0)
            if self.config.get("delete_inactive") and inactive:
                deleted = inactive[0]["AccessKeyId"]
                try:
                    iam.delete_access_key(UserName=self.user_name, AccessKeyId=deleted)
                except (botocore_exceptions.BotoCoreError, botocore_exceptions.ClientError) as exc:
                    raise self._aws_error(exc, "issue", "delete the inactive access key %s" % deleted)
            else:
                raise self._two_keys_error(keys)
        try:
            new = iam.create_access_key(UserName=self.user_name)["AccessKey"]
        except (botocore_exceptions.BotoCoreError, botocore_exceptions.ClientError) as exc:
            if self._code(exc) == "LimitExceeded":
                raise self._two_keys_error(self._keys("issue"))
            raise self._aws_error(exc, "issue", "create an access key")
        key_id, secret = new["AccessKeyId"], new["SecretAccessKey"]
        waited = self._wait_accepted(key_id, secret)
        info = dict(user_name=self.user_name, status=new.get("Status"), create_date=format_time(new.get("CreateDate")),
                    accepted_after_seconds=waited)
        if deleted:
            info["deleted_inactive_key_id"] = deleted
        return dict(id=key_id, secret=secret, info=info)

    def _two_keys_error(self, keys):
        listed = ", ".join("%s (%s since %s)" % (k["AccessKeyId"], k.get("Status"), format_time(k.get("CreateDate")))
                           for k in keys)
        active = all(k.get("Status") == "Active" for k in keys)
        fix = ("if a rotation of this credential is in flight, finish it (its old key is revoked at the end) or "
               "roll it back; otherwise find the key no consumer uses (GetAccessKeyLastUsed), deactivate it "
               "(aws iam update-access-key --status Inactive), and set issuer.delete_inactive: true so the next "
               "run deletes it. Active keys are never deleted to make room.")
        if not active and not self.config.get("delete_inactive"):
            fix = ("one key is inactive: set issuer.delete_inactive: true to let the rotation delete it, or delete "
                   "it yourself. Active keys are never deleted to make room.")
        return self.error("IAM user '%s' already has %d access keys: %s. AWS allows at most 2 per user, so a new "
                          "key cannot be issued%s." % (self.user_name, len(keys), listed,
                                                       " while both are active" if active else ""),
                          step="issue", fix=fix)

    def _wait_accepted(self, key_id, secret):
        """Wait until STS accepts the new key as this user; bounded by wait_timeout.

        On timeout the new key is deleted again (it would block the next run by the two-key
        limit) and the run fails."""
        if not self.wait_timeout or self.wait_timeout <= 0:
            return None

        def attempt():
            """(accepted, what came back when not)"""
            try:
                if self._accepts(key_id, secret):
                    return True, None
                return False, "STS answered for another identity"
            except botocore_exceptions.ClientError as exc:
                if self._code(exc) not in _REJECTED:
                    self._discard(key_id)
                    raise self._aws_error(exc, "issue", "check the new access key %s" % key_id, secrets=[secret])
                return False, self._code(exc)
            except botocore_exceptions.BotoCoreError as exc:
                return False, type(exc).__name__

        polled = poll_until(attempt, lambda answer: answer[0], self.wait_timeout, 1.0, backoff=2.0, max_interval=5.0,
                            last_at_deadline=False, sleep=self.sleep)
        if polled.done:
            return round(polled.elapsed, 1)
        last = polled.value[1]
        self._discard(key_id)
        raise self.error("the new access key %s of IAM user '%s' was not accepted by AWS within %ds (last: %s); "
                         "it was deleted again." % (key_id, self.user_name, self.wait_timeout, last),
                         step="issue", secrets=[secret],
                         fix="re-run; if AWS is slow to propagate keys here, raise issuer.wait_timeout.")

    def _discard(self, key_id):
        try:
            self._iam_client("issue").delete_access_key(UserName=self.user_name, AccessKeyId=key_id)
        except (botocore_exceptions.BotoCoreError, botocore_exceptions.ClientError):
            pass

    def _accepts(self, key_id, secret):
        arn = self._sts_as(key_id, secret).get_caller_identity().get("Arn") or ""
        resource = arn.split(":", 5)[-1]
        return resource.startswith("user/") and resource.rsplit("/", 1)[-1] == self.user_name

    def revoke(self, key_id, secret=None, force=False):
        if not key_id:
            raise self.error("revoking needs the access key id.", step="revoke",
                             fix="pass key_id (the store keeps it as key_id / previous_key_id).")
        iam = self._iam_client("revoke")
        if self.revoke_mode == "deactivate":
            found = [k for k in self._keys("revoke") if k["AccessKeyId"] == key_id]
            if not found or found[0].get("Status") == "Inactive":
                return False
            try:
                iam.update_access_key(UserName=self.user_name, AccessKeyId=key_id, Status="Inactive")
            except (botocore_exceptions.BotoCoreError, botocore_exceptions.ClientError) as exc:
                raise self._aws_error(exc, "revoke", "deactivate the access key %s" % key_id)
            return True
        try:
            iam.delete_access_key(UserName=self.user_name, AccessKeyId=key_id)
        except (botocore_exceptions.BotoCoreError, botocore_exceptions.ClientError) as exc:
            if self._code(exc) == "NoSuchEntity":
                return False
            raise self._aws_error(exc, "revoke", "delete the access key %s" % key_id)
        return True

    def exists(self, key_id):
        for key in self._keys("check"):
            if key["AccessKeyId"] == key_id:
                return key.get("Status") == "Active"
        return False

    def test(self, secret, key_id=None):
        if not key_id:
            return None
        try:
            return self._accepts(key_id, secret)
        except botocore_exceptions.ClientError as exc:
            if self._code(exc) in _REJECTED:
                return False
            raise self._aws_error(exc, "test", "test the access key %s" % key_id, secrets=[secret])
        except botocore_exceptions.BotoCoreError as exc:
            raise self._aws_error(exc, "test", "test the access key %s" % key_id, secrets=[secret])

    def usage(self, key_id, since):
        try:
            last = self._iam_client("usage").get_access_key_last_used(AccessKeyId=key_id)
        except (botocore_exceptions.BotoCoreError, botocore_exceptions.ClientError) as exc:
            if self._code(exc) == "NoSuchEntity":
                return []
            raise self._aws_error(exc, "usage", "read the last use of access key %s" % key_id)
        used = last.get("AccessKeyLastUsed") or {}
        when = used.get("LastUsedDate")
        if not when or (since and when < parse_time(since)):
            return []
        source = "%s/%s" % (used.get("ServiceName") or "unknown", used.get("Region") or "unknown")
        # full precision: the guard compares it with `since` again
        return [dict(time=format_time(when, fraction="auto"), source=source)]
