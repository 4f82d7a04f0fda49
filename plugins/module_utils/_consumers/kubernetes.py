# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes consumer: put a credential into a Secret and roll the Deployments that use it.

Only the official ``kubernetes`` Python client is used. The steps, each returning
``(changed, state)`` and honouring ``check_mode``:

1. ``ensure_secret_key``: write one key of a Secret (created if missing; otherwise a merge
   patch of that key only, guarded by resourceVersion). Changed only if the value differs.
2. ``force_sync``: for an External Secrets Operator ExternalSecret, set the
   ``force-sync`` annotation to the current unix time and wait until the target Secret's
   key holds the expected value (digests are compared; the value is never returned).
3. ``restart``: what ``kubectl rollout restart`` does: a strategic merge patch of
   ``spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]``.
4. ``wait_rollouts``: what ``kubectl rollout status`` decides, with one deadline.

Every library error becomes a ``RotationError`` naming the credential, the step and a fix;
secret values never appear in results or messages.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import hmac
import json
import time
import traceback

from ansible.module_utils.basic import env_fallback

from ansible_collections.credops.rotation.plugins.module_utils._errors import RotationError, scrub
from ansible_collections.credops.rotation.plugins.module_utils._poll import poll_until
from ansible_collections.credops.rotation.plugins.module_utils._time import format_time, unix_seconds

try:
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config
    from kubernetes.client.rest import ApiException
    from kubernetes.config.config_exception import ConfigException
    from urllib3.exceptions import HTTPError as Urllib3HTTPError
except ImportError:
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = traceback.format_exc()

    class ApiException(Exception):
        status, reason, body = None, None, None

    class ConfigException(Exception):
        pass

    class Urllib3HTTPError(Exception):
        pass
else:
    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None


#: The connection options, documented once in the ``credops.rotation.kubernetes`` doc fragment.
#: The K8S_AUTH_* fallbacks are the ones kubernetes.core uses.
KUBERNETES_CONNECTION_ARGSPEC = dict(
    kubeconfig=dict(type="path", fallback=(env_fallback, ["K8S_AUTH_KUBECONFIG"])),
    context=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_CONTEXT"])),
    host=dict(type="str", fallback=(env_fallback, ["K8S_AUTH_HOST"])),
    api_key=dict(type="str", no_log=True, fallback=(env_fallback, ["K8S_AUTH_API_KEY"])),
    validate_certs=dict(type="bool", aliases=["verify_ssl"], fallback=(env_fallback, ["K8S_AUTH_VERIFY_SSL"])),
    ca_cert=dict(type="path", aliases=["ssl_ca_cert"], fallback=(env_fallback, ["K8S_AUTH_SSL_CA_CERT"])),
)

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
FORCE_SYNC = "force-sync"
#: set on a Secret when this collection changes it: lets a re-run restart what an
#: interrupted run did not
UPDATED_AT = "credops.rotation/updated-at"
CREDENTIAL_ANNOTATION = "credops.rotation/credential"
ESO_GROUP = "external-secrets.io"
ESO_DEFAULT_VERSION = "v1beta1"
POLL_SECONDS = 0.5
#: kubectl's deploymentutil.TimedOutReason
TIMED_OUT_REASON = "ProgressDeadlineExceeded"

MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


# --------------------------------------------------------------------------- pure helpers

def digest(value):
    """SHA-256 digest of a str/bytes value; values are compared by digest only."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return hashlib.sha256(value or b"").digest()


def secret_holds(data, key, value):
    """True if a Secret's base64 ``data`` holds exactly ``value`` under ``key``."""
    encoded = (data or {}).get(key)
    if encoded is None:
        return False
    try:
        current = base64.b64decode(encoded)
    except (TypeError, ValueError):
        return False
    return hmac.compare_digest(digest(current), digest(value))


def encode_value(value):
    return base64.b64encode(value.encode("utf-8")).decode("ascii")


def next_force_sync(previous, now):
    """The force-sync annotation value: the unix time, always different from the last one."""
    stamp = int(now)
    try:
        if int(previous) >= stamp:
            stamp = int(previous) + 1
    except (TypeError, ValueError):
        pass
    return str(stamp)


def restart_patch(now):
    """The strategic merge patch ``kubectl rollout restart`` sends."""
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: format_time(now)}}}}}


def restart_pending(deployment, changed_at):
    """True if the deployment's pods may predate a Secret change made at ``changed_at``.

    Not pending when restarted (restartedAt, written by us after the change) in the same
    second or later, or created strictly later; when in doubt, pending (one extra restart
    is safe, a missed one is not).
    """
    if changed_at is None:
        return False
    meta = deployment.get("metadata") or {}
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    restarted = unix_seconds((template.get("annotations") or {}).get(RESTARTED_AT))
    created = unix_seconds(meta.get("creationTimestamp"))
    if restarted is not None and restarted >= changed_at:
        return False
    return not (created is not None and created > changed_at)


def rollout_status(deployment):
    """Decide like ``kubectl rollout status`` (DeploymentStatusViewer).

    ``deployment`` is the API object as a dict (camelCase). Returns
    ``(done, failed, message)``; ``failed`` means waiting longer will not help.
    """
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    name = meta.get("name", "?")
    generation = meta.get("generation") or 0
    observed = status.get("observedGeneration") or 0
    if generation > observed:
        return False, False, "waiting for deployment %s spec update to be observed" % name
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == TIMED_OUT_REASON:
            return False, True, "deployment %s exceeded its progress deadline (%s)" % (
                name, cond.get("message") or TIMED_OUT_REASON)
    wanted = spec.get("replicas")
    updated = status.get("updatedReplicas") or 0
    replicas = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if wanted is not None and updated < wanted:
        return False, False, "waiting for deployment %s rollout to finish: %d out of %d new replicas " \
                             "have been updated" % (name, updated, wanted)
    if replicas > updated:
        return False, False, "waiting for deployment %s rollout to finish: %d old replicas are pending " \
                             "termination" % (name, replicas - updated)
    if available < updated:
        return False, False, "waiting for deployment %s rollout to finish: %d of %d updated replicas " \
                             "are available" % (name, available, updated)
    return True, False, "deployment %s successfully rolled out" % name


def rollout_summary(deployment):
    """The non-secret facts returned per deployment."""
    done, failed, message = rollout_status(deployment)
    meta = deployment.get("metadata") or {}
    status = deployment.get("status") or {}
    return {
        "generation": meta.get("generation"),
        "observedGeneration": status.get("observedGeneration"),
        "replicas": (deployment.get("spec") or {}).get("replicas"),
        "updatedReplicas": status.get("updatedReplicas") or 0,
        "availableReplicas": status.get("availableReplicas") or 0,
        "ready": done,
        "failed": failed,
        "message": message,
    }


def api_error_message(exc):
    """A short, non-secret description of an ApiException: HTTP status, reason, Status message."""
    text = "HTTP %s %s" % (getattr(exc, "status", None), getattr(exc, "reason", None) or "")
    body = getattr(exc, "body", None)
    if body:
        try:
            message = json.loads(body).get("message")
        except (ValueError, AttributeError, TypeError):
            message = None
        if message:
            text += ": " + message
    return text.strip()


FIXES = {
    401: "the cluster did not accept the credentials: check kubeconfig/context or api_key.",
    403: "RBAC: the identity in use needs get/create/patch on secrets, get/patch on deployments "
         "(and externalsecrets) in the namespace.",
    404: "check the namespace and object names in the consumer's inventory entry.",
    409: "someone else changed the object at the same time: run again.",
    422: "the cluster rejected the object as invalid: see the message.",
}


def to_rotation_error(exc, credential, step, what, secrets=()):
    """Any library exception -> RotationError (message scrubbed of ``secrets``)."""
    if isinstance(exc, RotationError):
        return exc
    if isinstance(exc, ApiException):
        status = getattr(exc, "status", None)
        message = "%s failed: %s" % (what, api_error_message(exc))
        fix = FIXES.get(status, "see the message; kubectl with the same kubeconfig shows the same error.")
    elif isinstance(exc, ConfigException):
        message = "%s failed: invalid Kubernetes client configuration: %s" % (what, exc)
        fix = "check kubeconfig/context (or host and api_key) for this consumer."
    elif isinstance(exc, (Urllib3HTTPError, OSError)):
        message = "%s failed: cannot reach the Kubernetes API: %s" % (what, type(exc).__name__)
        fix = "check host/kubeconfig/context, the network path to the cluster, and TLS options " \
              "(validate_certs, ca_cert)."
    else:
        message = "%s failed: %s: %s" % (what, type(exc).__name__, exc)
        fix = None
    return RotationError(scrub(message, secrets), credential=credential, step=step, fix=fix)


# --------------------------------------------------------------------------- connection

def api_client_from_options(options, credential=None):
    """An ApiClient from the connection options (KUBERNETES_CONNECTION_ARGSPEC).

    kubeconfig/context are loaded unless only ``host`` is given; without any, the default
    kubeconfig, then the in-cluster service account. host / api_key / validate_certs /
    ca_cert override what was loaded.
    """
    cfg = k8s_client.Configuration()
    kubeconfig, context, host = options.get("kubeconfig"), options.get("context"), options.get("host")
    try:
        if kubeconfig or context or not host:
            try:
                k8s_config.load_kube_config(config_file=kubeconfig, context=context,
                                            client_configuration=cfg, persist_config=False)
            except (ConfigException, IOError, OSError):
                if kubeconfig or context:
                    raise
                try:
                    k8s_config.load_incluster_config(client_configuration=cfg)
                except ConfigException:
                    raise RotationError(
                        "no Kubernetes connection settings: no kubeconfig at the default location "
                        "(KUBECONFIG or ~/.kube/config) and not running inside a cluster.",
                        credential, "connect",
                        "set kubeconfig (and context) or host and api_key on the consumer's cluster host.")
        if host:
            cfg.host = host
        if options.get("api_key"):
            cfg.api_key = {"BearerToken": "Bearer " + options["api_key"]}
            cfg.api_key_prefix = {}
            cfg.refresh_api_key_hook = None       # else the kubeconfig's token comes back
        if options.get("validate_certs") is not None:
            cfg.verify_ssl = options["validate_certs"]
        if options.get("ca_cert"):
            cfg.ssl_ca_cert = options["ca_cert"]
        return k8s_client.ApiClient(configuration=cfg)
    except Exception as exc:
        raise to_rotation_error(exc, credential, "connect", "loading the Kubernetes connection settings",
                                secrets=[options.get("api_key")])


# --------------------------------------------------------------------------- the consumer

class KubernetesConsumer(object):
    """One namespace of one cluster, for one credential. Never stores or returns the value."""

    def __init__(self, api_client, credential, namespace, check_mode=False,
                 clock=time.time, sleep=time.sleep, monotonic=time.monotonic):
        self.api_client = api_client
        self.core = k8s_client.CoreV1Api(api_client)
        self.apps = k8s_client.AppsV1Api(api_client)
        self.custom = k8s_client.CustomObjectsApi(api_client)
        self.credential = credential
        self.namespace = namespace
        self.check_mode = check_mode
        self.clock, self.sleep, self.monotonic = clock, sleep, monotonic

    def _error(self, exc, step, what, secrets=()):
        return to_rotation_error(exc, self.credential, step, what, secrets)

    def _plain(self, obj):
        return obj if isinstance(obj, dict) else self.api_client.sanitize_for_serialization(obj)

    def _where(self, kind, name):
        return "%s %s/%s" % (kind, self.namespace, name)

    def read_secret(self, name, step="deploy"):
        """The Secret as a dict, or None if it does not exist."""
        try:
            return self._plain(self.core.read_namespaced_secret(name, self.namespace))
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise self._error(exc, step, "reading " + self._where("Secret", name))
        except Exception as exc:
            raise self._error(exc, step, "reading " + self._where("Secret", name))

    # ---- 1. the Secret
    def ensure_secret_key(self, name, key, value, attempts=3):
        """Write ``key`` of Secret ``name``. Returns (changed, state) with state:
        existed (bool), key_present (bool, before), updated_at (unix time or None)."""
        what = "writing key '%s' of %s" % (key, self._where("Secret", name))
        for _attempt in range(attempts):
            secret = self.read_secret(name)
            data = (secret or {}).get("data") or {}
            state = {"existed": secret is not None, "key_present": key in data,
                     "updated_at": unix_seconds(((secret or {}).get("metadata", {}).get("annotations") or {})
                                                .get(UPDATED_AT))}
            if secret is not None and secret_holds(data, key, value):
                return False, state
            if secret is not None and secret.get("immutable"):
                raise RotationError("%s: the Secret is immutable." % what, self.credential, "deploy",
                                    "immutable Secrets cannot change: delete and recreate it, or use a new name.")
            now = self.clock()
            state["updated_at"] = float(int(now))
            if self.check_mode:
                return True, state
            annotations = {UPDATED_AT: format_time(now)}
            try:
                if secret is None:
                    annotations[CREDENTIAL_ANNOTATION] = self.credential or ""
                    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                            "metadata": {"name": name, "namespace": self.namespace, "annotations": annotations},
                            "data": {key: encode_value(value)}}
                    self.core.create_namespaced_secret(self.namespace, body)
                else:
                    body = {"metadata": {"annotations": annotations,
                                         "resourceVersion": secret["metadata"]["resourceVersion"]},
                            "data": {key: encode_value(value)}}
                    self.core.patch_namespaced_secret(name, self.namespace, body, _content_type=MERGE_PATCH)
                return True, state
            except ApiException as exc:
                if exc.status == 409:          # changed / created meanwhile: read again
                    continue
                raise self._error(exc, "deploy", what, [value])
            except Exception as exc:
                raise self._error(exc, "deploy", what, [value])
        raise RotationError("%s: the Secret kept changing under us (%d conflicts)." % (what, attempts),
                            self.credential, "deploy", "find who else writes this Secret, then run again.")

    # ---- 2. the ExternalSecret
    def external_secret_version(self):
        """The preferred served version of external-secrets.io (v1beta1 if discovery says nothing)."""
        try:
            for group in k8s_client.ApisApi(self.api_client).get_api_versions().groups or []:
                if group.name == ESO_GROUP and group.preferred_version:
                    return group.preferred_version.version
        except Exception:
            pass
        return ESO_DEFAULT_VERSION

    def read_external_secret(self, name, version):
        try:
            return self.custom.get_namespaced_custom_object(ESO_GROUP, version, self.namespace,
                                                            "externalsecrets", name)
        except Exception as exc:
            fix = None
            if isinstance(exc, ApiException) and exc.status == 404:
                fix = "check the external_secret name and namespace, and that the External Secrets " \
                      "Operator CRDs (%s) are installed." % ESO_GROUP
            err = self._error(exc, "deploy", "reading " + self._where("ExternalSecret", name))
            if fix:
                err = RotationError(err.message, self.credential, "deploy", fix)
            raise err

    def force_sync(self, name, key, value, timeout, secret=None):
        """Make the operator sync now and wait until the target Secret's ``key`` holds ``value``.

        Returns (changed, state): target (Secret name), synced (bool), requested (the
        force-sync annotation set, or None), updated_at (unix time of the request).
        """
        version = self.external_secret_version()
        es = self.read_external_secret(name, version)
        target = ((es.get("spec") or {}).get("target") or {}).get("name") or name
        if secret and secret != target:
            raise RotationError(
                "ExternalSecret %s writes Secret '%s', not '%s'." % (self._where("ExternalSecret", name),
                                                                     target, secret),
                self.credential, "deploy", "set the consumer's secret to '%s' or drop it." % target)
        annotations = (es.get("metadata") or {}).get("annotations") or {}
        current = self.read_secret(target)
        state = {"target": target, "synced": False, "requested": None,
                 "updated_at": float(annotations[FORCE_SYNC]) if str(annotations.get(FORCE_SYNC, "")).isdigit()
                 else None}
        if current is not None and secret_holds(current.get("data"), key, value):
            state["synced"] = True
            return False, state
        stamp = next_force_sync(annotations.get(FORCE_SYNC), self.clock())
        state.update(requested=stamp, updated_at=float(stamp))
        if self.check_mode:
            return True, state
        try:
            self.custom.patch_namespaced_custom_object(
                ESO_GROUP, version, self.namespace, "externalsecrets", name,
                {"metadata": {"annotations": {FORCE_SYNC: stamp}}}, _content_type=MERGE_PATCH)
        except Exception as exc:
            raise self._error(exc, "deploy", "annotating " + self._where("ExternalSecret", name))

        def holds():
            current = self.read_secret(target)
            return current is not None and secret_holds(current.get("data"), key, value)

        if poll_until(holds, deadline=timeout, interval=POLL_SECONDS, clock=self.monotonic, sleep=self.sleep).done:
            state["synced"] = True
            return True, state
        es = self.read_external_secret(name, version)
        ready = [c for c in ((es.get("status") or {}).get("conditions") or []) if c.get("type") == "Ready"]
        refs = ", ".join(sorted({"%s%s" % ((d.get("remoteRef") or {}).get("key"),
                                           "#" + d["remoteRef"]["property"]
                                           if (d.get("remoteRef") or {}).get("property") else "")
                                 for d in (es.get("spec") or {}).get("data") or []}))
        status_text = ("Ready=%s (%s: %s)" % (ready[0].get("status"), ready[0].get("reason"),
                                              ready[0].get("message")) if ready else "no Ready condition")
        spec = es.get("spec") or {}
        if str(spec.get("refreshInterval", "")) in ("0", "0s") and spec.get("refreshPolicy") in (None, "Periodic"):
            status_text += " (refreshInterval is 0: some operator versions then ignore force-sync; " \
                           "set a refreshInterval or refreshPolicy: OnChange)"
        raise RotationError(
            scrub("Secret %s key '%s' does not hold the new value %ss after forcing a sync of "
                  "ExternalSecret %s; operator status: %s." % (self._where("Secret", target), key, timeout,
                                                               name, status_text), [value]),
            self.credential, "deploy",
            "check that the store holds the new value at the ExternalSecret's remoteRef (%s), that the "
            "key maps to '%s', and that the External Secrets Operator is running "
            "(kubectl -n %s describe externalsecret %s)." % (refs or "none", key, self.namespace, name))

    # ---- 3. restarts
    def read_deployment(self, name, step="deploy"):
        try:
            return self._plain(self.apps.read_namespaced_deployment(name, self.namespace))
        except Exception as exc:
            err = self._error(exc, step, "reading " + self._where("Deployment", name))
            if isinstance(exc, ApiException) and exc.status == 404:
                err = RotationError(err.message, self.credential, step,
                                    "fix the consumer's deployments list (kubectl -n %s get deployments)."
                                    % self.namespace)
            raise err

    def restart(self, names):
        """``kubectl rollout restart`` each deployment. Returns (changed, {name: restartedAt})."""
        now = self.clock()
        done = {}
        for name in names:
            dep = self.read_deployment(name)
            if (dep.get("spec") or {}).get("paused"):
                raise RotationError("can't restart paused %s." % self._where("Deployment", name),
                                    self.credential, "deploy",
                                    "kubectl -n %s rollout resume deployment/%s, then run again."
                                    % (self.namespace, name))
            done[name] = format_time(now)
            if self.check_mode:
                continue
            try:
                self.apps.patch_namespaced_deployment(name, self.namespace, restart_patch(now),
                                                      _content_type=STRATEGIC_MERGE_PATCH)
            except Exception as exc:
                raise self._error(exc, "deploy", "restarting " + self._where("Deployment", name))
        return bool(done), done

    # ---- 4. rollouts
    def wait_rollouts(self, names, timeout):
        """Wait until every rollout is complete, with one deadline. Returns {name: summary}."""
        summaries = {}
        pending = list(names)

        def all_ready():
            for name in list(pending):
                dep = self.read_deployment(name, step="deploy")
                summaries[name] = rollout_summary(dep)
                if summaries[name]["failed"]:
                    raise RotationError(
                        summaries[name]["message"] + ".", self.credential, "deploy",
                        "the new pods do not become available: kubectl -n %s rollout status deployment/%s; "
                        "kubectl -n %s describe deployment %s (image, probes, quota), then run again or "
                        "roll back." % (self.namespace, name, self.namespace, name))
                if summaries[name]["ready"]:
                    pending.remove(name)
            return not pending

        poll_until(all_ready, deadline=timeout, interval=POLL_SECONDS, clock=self.monotonic, sleep=self.sleep)
        if pending:
            raise RotationError(
                "rollout of %s not complete after %ss: %s." % (
                    ", ".join(self._where("Deployment", n) for n in pending), timeout,
                    "; ".join(summaries[n]["message"] for n in pending)),
                self.credential, "deploy",
                "kubectl -n %s rollout status deployment/%s shows what it waits for; fix the pods or raise "
                "wait_timeout, then run again (the Secret already holds the new value)."
                % (self.namespace, pending[0]))
        return summaries


def apply(consumer, secret, key, value, external_secret=None, deployments=(), restart=True,
          force_restart=False, wait=True, wait_timeout=120, result=None):
    """The whole consumer step. Returns a result dict without any secret value.

    ``result`` (optional) is filled in place as the steps succeed, so that a caller that
    catches a RotationError still knows what already changed.

    Deployments are restarted when the Secret changed now, when ``force_restart``, or when
    one of them has not been restarted since the last change this collection made (an
    interrupted run), as recorded on the Secret (``credops.rotation/updated-at``) or on the
    ExternalSecret (``force-sync``).
    """
    result = {} if result is None else result
    result.update(changed=False, secret_changed=False, restarted=[], rollouts={},
                  secret=secret, namespace=consumer.namespace)
    if external_secret:
        changed, state = consumer.force_sync(external_secret, key, value, wait_timeout, secret=secret)
        result["secret"] = state["target"]
    else:
        changed, state = consumer.ensure_secret_key(secret, key, value)
    result.update(secret_changed=changed, changed=changed)
    changed_at = state.get("updated_at")

    to_restart = []
    for name in deployments:
        dep = consumer.read_deployment(name)
        if force_restart or (restart and (changed or restart_pending(dep, changed_at))):
            to_restart.append(name)
    for name in to_restart:                  # one by one: a failure still reports the earlier ones
        consumer.restart([name])
        result["restarted"].append(name)
        result["changed"] = True
    if deployments and wait and not consumer.check_mode:
        result["rollouts"] = consumer.wait_rollouts(list(deployments), wait_timeout)
    elif deployments:
        result["rollouts"] = dict((n, rollout_summary(consumer.read_deployment(n))) for n in deployments)
    return result
