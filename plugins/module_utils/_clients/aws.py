# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one place a boto3 session and its clients are built, for every AWS kind (the issuer
``aws_iam``, the store ``aws_secretsmanager``).

The options are named as amazon.aws names them: ``access_key``, ``secret_key``,
``session_token``, ``profile``, ``region``, ``endpoint_url``, ``validate_certs``,
``aws_ca_bundle``, plus ``timeout`` (seconds, connect and read). Unset, each falls back to
boto3's own chain (environment, config files, instance or pod role). A kind whose inventory
names differ (the issuer's ``ca_path``, the store's ``ca_cert``) maps them onto these names.

boto3 is imported on first use (``_lazy``): a run of another kind does not pay for it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.credops.rotation.plugins.module_utils._clients._common import verify_setting
from ansible_collections.credops.rotation.plugins.module_utils._lazy import LazyModule

boto3 = LazyModule("boto3")
botocore_config = LazyModule("botocore.config")
botocore_exceptions = LazyModule("botocore.exceptions")

#: the connection and credential options, as amazon.aws names them
AWS_OPTIONS = ("access_key", "secret_key", "session_token", "profile", "region", "endpoint_url",
               "validate_certs", "aws_ca_bundle", "timeout")


def aws_session(options):
    """A boto3 session for ``options`` (named as in AWS_OPTIONS): ``profile``; ``access_key``,
    ``secret_key`` and ``session_token`` when a key is given; ``region``. Raises botocore's
    errors (ProfileNotFound, ...) for the caller to explain."""
    kwargs = {}
    if options.get("profile"):
        kwargs["profile_name"] = options["profile"]
    if options.get("access_key") or options.get("secret_key"):
        kwargs.update(aws_access_key_id=options.get("access_key"),
                      aws_secret_access_key=options.get("secret_key"),
                      aws_session_token=options.get("session_token"))
    if options.get("region"):
        kwargs["region_name"] = options["region"]
    return boto3.session.Session(**kwargs)


def aws_client(session, service, options, max_attempts):
    """A client of ``service`` from ``session``: ``region`` (else the session's),
    ``endpoint_url``, TLS from ``validate_certs`` / ``aws_ca_bundle``, ``timeout`` (default
    10 seconds) for connect and read, and botocore's standard retry mode with at most
    ``max_attempts`` attempts (1: never resent)."""
    timeout = options.get("timeout") or 10
    return session.client(
        service, region_name=options.get("region") or session.region_name,
        endpoint_url=options.get("endpoint_url") or None,
        verify=verify_setting(options.get("validate_certs"), options.get("aws_ca_bundle")),
        config=botocore_config.Config(connect_timeout=timeout, read_timeout=timeout,
                                      retries={"mode": "standard", "max_attempts": max_attempts}))
