"""A small Kubernetes API *emulator* for the lab. It is NOT a Kubernetes API server.

No real API server can run in the lab, so this process speaks just enough of the real
REST API, on the real paths, for the official ``kubernetes`` Python client (CoreV1Api,
AppsV1Api, CustomObjectsApi, ApisApi and the dynamic client's discovery) to manage:

* ``v1`` Secrets (``stringData`` folded into base64 ``data`` as the real API does),
* ``apps/v1`` Deployments, with a simulated controller: a spec change bumps
  ``metadata.generation``; for a moment ``status.observedGeneration`` lags, then the new
  generation is observed with ``updatedReplicas < replicas``, and after ``rollout_seconds``
  the rollout completes (all replica counts equal, condition Progressing /
  NewReplicaSetAvailable). At each completed rollout the simulated pods *capture* their
  environment (``env[].value``, ``env[].valueFrom.secretKeyRef``, ``envFrom[].secretRef``);
  until then the old pods keep serving the old environment, as in a real cluster.
  A Deployment annotated ``emulator.credops.test/stuck: "true"`` never finishes its
  rollout; once ``spec.progressDeadlineSeconds`` passed, Progressing turns False with
  reason ProgressDeadlineExceeded.
* ``external-secrets.io/v1beta1`` ExternalSecrets, with a simulated External Secrets
  Operator: on creation and whenever ``metadata.annotations["force-sync"]`` (or the spec)
  changes, each ``spec.data[].remoteRef {key, property}`` is read from OpenBao/Vault KV v2
  (mount ``secret``) and written to the Secret ``spec.target.name``; ``status.refreshTime``
  and the Ready condition are set.

Verbs: GET (list / one), POST, PUT (optimistic locking on resourceVersion), PATCH
(merge, strategic merge treated as merge, JSON patch) and DELETE; errors are ``Status``
objects (404 NotFound, 409 AlreadyExists / Conflict, 422 Invalid, 401 Unauthorized).
Not emulated: watches, field selectors, admission, RBAC, namespaces as real objects
(every namespace exists), server-side apply, periodic ExternalSecret refresh.

Test-only endpoints (no auth):
    GET /_emulator/namespaces/{ns}/deployments/{name}/env
    GET /_emulator/namespaces/{ns}/deployments/{name}/health?var=ENV_VAR
        calls {provider_url}/v1/test with ``Authorization: Bearer <captured ENV_VAR>``:
        200 {"status": "healthy", ...} if the provider accepts it, else 503.

Run:   python -m tests.lab.k8s_emulator --port P [--vault-addr URL --vault-token T]
                                         [--provider-url URL]
From Python: ``K8sEmulator(workdir, ...)`` (below). Traffic goes to 127.0.0.0/8 only.
"""
import argparse
import base64
import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STUCK_ANNOTATION = "emulator.credops.test/stuck"
OBSERVE_LAG = 0.3          # seconds before a new generation is observed
ES_SYNC_DELAY = 0.3        # seconds before the "operator" acts on a force-sync
TICK = 0.1
DEFAULT_TOKEN = "emulator-token"


def now_rfc3339():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def b64(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def unb64(data):
    return base64.b64decode(data, validate=True).decode("utf-8", "replace")


def loopback_only(url):
    """Refuse any address outside 127.0.0.0/8 (the lab's network rule)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host != "localhost" and not host.startswith("127."):
        raise SystemExit("k8s_emulator: refusing non-loopback address %s" % url)
    return url.rstrip("/")


def http_get(url, headers, timeout=5.0):
    """GET without any proxy (loopback only). Returns (status, parsed JSON or None)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(url, headers=headers)
    try:
        with opener.open(req, timeout=timeout) as resp:
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    try:
        return status, json.loads(body or b"null")
    except ValueError:
        return status, None


# --------------------------------------------------------------------------- resources

class Kind(object):
    def __init__(self, group, version, plural, kind, namespaced=True, status=False):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced, self.has_status = namespaced, status

    @property
    def api_version(self):
        return "%s/%s" % (self.group, self.version) if self.group else self.version

    @property
    def resource(self):
        """How the real API names the resource in messages: secrets, deployments.apps."""
        return "%s.%s" % (self.plural, self.group) if self.group else self.plural

    def discovery(self):
        verbs = ["create", "delete", "get", "list", "patch", "update"]
        out = [{"name": self.plural, "singularName": self.kind.lower(), "namespaced": self.namespaced,
                "kind": self.kind, "verbs": verbs}]
        if self.has_status:
            out.append({"name": self.plural + "/status", "singularName": "", "namespaced": True,
                        "kind": self.kind, "verbs": ["get", "patch", "update"]})
        return out


KINDS = {
    ("", "v1", "secrets"): Kind("", "v1", "secrets", "Secret"),
    ("apps", "v1", "deployments"): Kind("apps", "v1", "deployments", "Deployment", status=True),
    ("external-secrets.io", "v1beta1", "externalsecrets"):
        Kind("external-secrets.io", "v1beta1", "externalsecrets", "ExternalSecret", status=True),
}
NAMESPACE_KIND = Kind("", "v1", "namespaces", "Namespace", namespaced=False)
GROUPS = {"apps": "v1", "external-secrets.io": "v1beta1"}

PATH_RE = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?$")
EMU_RE = re.compile(r"^/_emulator/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)/(?P<what>env|health)$")


class ApiError(Exception):
    def __init__(self, code, reason, message, details=None):
        super(ApiError, self).__init__(message)
        self.body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                     "message": message, "reason": reason, "details": details or {}, "code": code}
        self.code = code


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (also used for strategic merge patch: enough here)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(doc, ops):
    """RFC 6902 JSON patch: add, remove, replace, test, copy, move."""
    doc = copy.deepcopy(doc)

    def walk(path):
        parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
        if not parts:
            raise ApiError(422, "Invalid", "JSON patch on the whole document is not supported")
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        return parent, parts[-1]

    def get(path):
        parent, last = walk(path)
        return parent[int(last)] if isinstance(parent, list) else parent[last]

    def put(path, value, replace):
        parent, last = walk(path)
        if isinstance(parent, list):
            if last == "-":
                parent.append(value)
            elif replace:
                parent[int(last)] = value
            else:
                parent.insert(int(last), value)
        else:
            if replace and last not in parent:
                raise KeyError(last)
            parent[last] = value

    def remove(path):
        parent, last = walk(path)
        return parent.pop(int(last)) if isinstance(parent, list) else parent.pop(last)

    try:
        for op in ops:
            kind, path = op["op"], op["path"]
            if kind == "add":
                put(path, copy.deepcopy(op["value"]), False)
            elif kind == "replace":
                put(path, copy.deepcopy(op["value"]), True)
            elif kind == "remove":
                remove(path)
            elif kind == "test":
                if get(path) != op["value"]:
                    raise ApiError(422, "Invalid", "the server rejected our request due to an error in our "
                                   "request: testing value %s failed" % path)
            elif kind == "copy":
                put(path, copy.deepcopy(get(op["from"])), False)
            elif kind == "move":
                put(path, remove(op["from"]), False)
            else:
                raise ApiError(400, "BadRequest", "Unexpected kind: %s" % kind)
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise ApiError(422, "Invalid", "the server rejected our request due to an error in our request: "
                       "jsonpatch failed on %r" % (exc,))
    return doc


# --------------------------------------------------------------------------- the state

class Cluster(object):
    """Objects, resourceVersions and the simulated controllers. One lock guards it all."""

    def __init__(self, vault_addr=None, vault_token=None, provider_url=None, rollout_seconds=1.0):
        self.vault_addr, self.vault_token = vault_addr, vault_token
        self.provider_url, self.rollout_seconds = provider_url, rollout_seconds
        self.lock = threading.RLock()
        self.objects = {}      # (plural, ns, name) -> object
        self.rv = 0
        self.rollouts = {}     # ("deployments", ns, name) -> {"generation", "started", "done"}
        self.captured = {}     # ("deployments", ns, name) -> {"generation", "capturedAt", "env", ...}
        self.es_seen = {}      # ("externalsecrets", ns, name) -> (force-sync, generation) last synced
        self.es_due = {}       # key -> monotonic time when the "operator" acts

    # ---- storage
    def _next_rv(self):
        self.rv += 1
        return str(self.rv)

    def _not_found(self, kind, name):
        raise ApiError(404, "NotFound", '%s "%s" not found' % (kind.resource, name),
                       {"name": name, "group": kind.group, "kind": kind.plural})

    def list(self, kind, ns, selector=None):
        want = dict(p.split("=", 1) for p in selector.split(",") if "=" in p) if selector else {}
        with self.lock:
            items = [copy.deepcopy(o) for (plural, ons, _name), o in sorted(self.objects.items())
                     if plural == kind.plural and (ns is None or ons == ns)
                     and all((o["metadata"].get("labels") or {}).get(k) == v for k, v in want.items())]
            return {"kind": kind.kind + "List", "apiVersion": kind.api_version,
                    "metadata": {"resourceVersion": str(self.rv)}, "items": items}

    def get(self, kind, ns, name):
        with self.lock:
            obj = self.objects.get((kind.plural, ns, name))
            if obj is None:
                self._not_found(kind, name)
            return copy.deepcopy(obj)

    def create(self, kind, ns, body):
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request is not a JSON object")
        meta = body.setdefault("metadata", {})
        if meta.get("namespace") not in (None, ns):
            raise ApiError(400, "BadRequest", "the namespace of the provided object does not match "
                                              "the namespace sent on the request")
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta.get("name")
        if not name:
            raise ApiError(422, "Invalid", "%s \"\" is invalid: metadata.name: Required value" % kind.kind,
                           {"kind": kind.kind})
        with self.lock:
            if (kind.plural, ns, name) in self.objects:
                raise ApiError(409, "AlreadyExists", '%s "%s" already exists' % (kind.resource, name),
                               {"name": name, "group": kind.group, "kind": kind.plural})
            return self._store(kind, ns, name, body, None)

    def replace(self, kind, ns, name, body, sub=None):
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request is not a JSON object")
        with self.lock:
            old = self.objects.get((kind.plural, ns, name))
            if old is None:
                self._not_found(kind, name)
            meta = body.setdefault("metadata", {})
            if meta.get("name", name) != name:
                raise ApiError(400, "BadRequest", "the name of the object (%s) does not match the name "
                                                  "on the URL (%s)" % (meta.get("name"), name))
            wanted_rv = meta.get("resourceVersion")
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                raise ApiError(409, "Conflict", 'Operation cannot be fulfilled on %s "%s": the object has '
                               'been modified; please apply your changes to the latest version and try '
                               'again' % (kind.resource, name),
                               {"name": name, "group": kind.group, "kind": kind.plural})
            if kind.has_status:
                if sub == "status":       # the status subresource changes status only
                    body = dict(copy.deepcopy(old), status=body.get("status", {}))
                else:                     # the main resource never changes status
                    body = dict(body, status=copy.deepcopy(old.get("status", {})))
            return self._store(kind, ns, name, body, old)

    def patch(self, kind, ns, name, body, content_type, sub=None):
        with self.lock:
            current = self.get(kind, ns, name)
            if content_type == "application/json-patch+json":
                if not isinstance(body, list):
                    raise ApiError(400, "BadRequest", "json: cannot unmarshal object into Go value of "
                                                      "type jsonpatch.Patch")
                new = json_patch(current, body)
            elif content_type in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "the body of the request is not a JSON object")
                new = merge_patch(current, body)
            else:
                raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown "
                               "format - accepted media types include: application/json-patch+json, "
                               "application/merge-patch+json, application/strategic-merge-patch+json")
            if "resourceVersion" not in ((body.get("metadata") or {}) if isinstance(body, dict) else {}):
                new["metadata"].pop("resourceVersion", None)
            return self.replace(kind, ns, name, new, sub)

    def delete(self, kind, ns, name):
        with self.lock:
            key = (kind.plural, ns, name)
            if key not in self.objects:
                self._not_found(kind, name)
            del self.objects[key]
            for table in (self.rollouts, self.captured, self.es_seen, self.es_due):
                table.pop(key, None)
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": kind.group, "kind": kind.plural}}

    def _store(self, kind, ns, name, body, old):
        """Validate, default, stamp metadata and run the controllers' hooks."""
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = kind.api_version, kind.kind
        meta = obj["metadata"]
        meta.update(name=name, namespace=ns)
        if old is None:
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339())
            if kind.has_status:
                obj["status"] = {}
        else:
            meta.update(uid=old["metadata"]["uid"], creationTimestamp=old["metadata"]["creationTimestamp"])
        if kind.plural == "secrets":
            self._normalise_secret(obj)
        elif kind.plural == "deployments":
            self._normalise_deployment(obj)
        if kind.has_status:
            spec_changed = old is None or old.get("spec") != obj.get("spec")
            meta["generation"] = 1 if old is None else old["metadata"].get("generation", 1) + int(spec_changed)
        else:
            spec_changed = False
        meta["resourceVersion"] = self._next_rv()
        key = (kind.plural, ns, name)
        self.objects[key] = obj
        if kind.plural == "deployments" and spec_changed:
            self.rollouts[key] = {"generation": meta["generation"], "started": time.monotonic(), "done": False}
        if kind.plural == "externalsecrets":
            marker = ((meta.get("annotations") or {}).get("force-sync"), meta["generation"])
            if self.es_seen.get(key) != marker and key not in self.es_due:
                self.es_due[key] = time.monotonic() + ES_SYNC_DELAY
        return copy.deepcopy(obj)

    @staticmethod
    def _normalise_secret(obj):
        data = obj.get("data") or {}
        for key, value in data.items():
            try:
                base64.b64decode(value or "", validate=True)
            except (ValueError, TypeError):
                raise ApiError(400, "BadRequest", 'Secret in version "v1" cannot be handled as a Secret: '
                                                  'illegal base64 data in key "%s"' % key)
        for key, value in (obj.pop("stringData", None) or {}).items():
            data[key] = b64(value)
        obj["data"] = data
        obj.setdefault("type", "Opaque")

    @staticmethod
    def _normalise_deployment(obj):
        spec = obj.get("spec") or {}
        name = obj["metadata"]["name"]
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers")
        for field, ok in (("spec.selector", spec.get("selector")), ("spec.template.spec.containers", containers)):
            if not ok:
                raise ApiError(422, "Invalid", 'Deployment.apps "%s" is invalid: %s: Required value' % (name, field),
                               {"name": name, "group": "apps", "kind": "Deployment"})
        spec.setdefault("replicas", 1)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("strategy", {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})

    # ---- simulated controllers
    def tick(self):
        now = time.monotonic()
        with self.lock:
            for key, ro in list(self.rollouts.items()):
                if not ro["done"] and key in self.objects:
                    self._reconcile_deployment(key, ro, now)
            due = [k for k, t in self.es_due.items() if t <= now]
            jobs = [(k, copy.deepcopy(self.objects[k])) for k in due if k in self.objects]
            for k in due:
                self.es_due.pop(k, None)
        for key, es in jobs:           # network calls happen outside the lock
            self._sync_external_secret(key, es)

    def _set_status(self, key, status):
        obj = self.objects[key]
        if obj.get("status") != status:
            obj["status"] = status
            obj["metadata"]["resourceVersion"] = self._next_rv()

    def _reconcile_deployment(self, key, ro, now):
        obj = self.objects[key]
        spec, meta = obj["spec"], obj["metadata"]
        elapsed = now - ro["started"]
        if elapsed < OBSERVE_LAG:
            return                                  # the new generation is not observed yet
        replicas = int(spec.get("replicas", 1))
        stuck = (meta.get("annotations") or {}).get(STUCK_ANNOTATION) == "true"
        old = obj.get("status") or {}
        conditions = {c["type"]: c for c in old.get("conditions", [])}

        def condition(ctype, status, reason, message):
            prev = conditions.get(ctype, {})
            same = prev.get("status") == status and prev.get("reason") == reason
            stamp = now_rfc3339()
            return {"type": ctype, "status": status, "reason": reason, "message": message,
                    "lastUpdateTime": prev.get("lastUpdateTime", stamp) if same else stamp,
                    "lastTransitionTime": prev.get("lastTransitionTime", stamp)
                    if prev.get("status") == status else stamp}

        rs = "%s-%s" % (meta["name"], hashlib.sha1(json.dumps(spec.get("template"), sort_keys=True)
                                                   .encode()).hexdigest()[:10])
        status = {"observedGeneration": meta["generation"]}
        if replicas and (stuck or elapsed < OBSERVE_LAG + self.rollout_seconds):
            updated = replicas // 2
            status.update(replicas=replicas + 1, updatedReplicas=updated, readyReplicas=replicas,
                          availableReplicas=replicas, unavailableReplicas=1)
            if stuck and elapsed >= OBSERVE_LAG + int(spec.get("progressDeadlineSeconds", 600)):
                progressing = condition("Progressing", "False", "ProgressDeadlineExceeded",
                                        'ReplicaSet "%s" has timed out progressing.' % rs)
            else:
                progressing = condition("Progressing", "True", "ReplicaSetUpdated",
                                        'ReplicaSet "%s" is progressing.' % rs)
        else:
            status.update(replicas=replicas, updatedReplicas=replicas, readyReplicas=replicas,
                          availableReplicas=replicas)
            progressing = condition("Progressing", "True", "NewReplicaSetAvailable",
                                    'ReplicaSet "%s" has successfully progressed.' % rs)
            ro["done"] = True
            self.captured[key] = self._capture_env(key[1], obj)
        status["conditions"] = [condition("Available", "True", "MinimumReplicasAvailable",
                                          "Deployment has minimum availability."), progressing]
        self._set_status(key, status)

    def _capture_env(self, ns, deployment):
        """What the new pods see: env values and Secret references resolved now."""
        def secret_data(name):
            sec = self.objects.get(("secrets", ns, name)) or {}
            return {k: unb64(v) for k, v in (sec.get("data") or {}).items()}

        containers = {}
        for c in deployment["spec"]["template"]["spec"]["containers"]:
            env = {}
            for src in c.get("envFrom") or []:
                if src.get("secretRef"):
                    for k, v in secret_data(src["secretRef"].get("name")).items():
                        env[src.get("prefix", "") + k] = v
            for item in c.get("env") or []:
                ref = (item.get("valueFrom") or {}).get("secretKeyRef")
                if "value" in item:
                    env[item["name"]] = item["value"]
                elif ref:
                    data = secret_data(ref.get("name"))
                    if ref.get("key") in data:
                        env[item["name"]] = data[ref["key"]]
            containers[c.get("name", "")] = env
        merged = {}
        for env in containers.values():
            merged.update(env)
        return {"generation": deployment["metadata"]["generation"], "capturedAt": now_rfc3339(),
                "env": merged, "containers": containers}

    def _sync_external_secret(self, key, es):
        """The simulated External Secrets Operator: store -> Secret, then status."""
        ns, name = key[1], key[2]
        meta, spec = es["metadata"], es.get("spec") or {}
        target = (spec.get("target") or {}).get("name") or name
        values, error = {}, None
        if not self.vault_addr:
            error = "no store configured (start the emulator with --vault-addr)"
        for item in spec.get("data") or []:
            if error:
                break
            ref = item.get("remoteRef") or {}
            status, body = http_get("%s/v1/secret/data/%s" % (self.vault_addr, ref.get("key", "").strip("/")),
                                    {"X-Vault-Token": self.vault_token or ""})
            data = ((body or {}).get("data") or {}).get("data") if status == 200 else None
            if data is None:
                error = "could not get secret data from provider: key %r: HTTP %s" % (ref.get("key"), status)
            elif ref.get("property") and ref["property"] not in data:
                error = "could not get secret data from provider: key %r has no property %r" % (
                    ref.get("key"), ref["property"])
            else:
                value = data[ref["property"]] if ref.get("property") else data
                values[item["secretKey"]] = value if isinstance(value, str) else json.dumps(value)
        with self.lock:
            current = self.objects.get(key)
            if current is None:
                return
            self.es_seen[key] = ((meta.get("annotations") or {}).get("force-sync"), meta["generation"])
            latest = ((current["metadata"].get("annotations") or {}).get("force-sync"),
                      current["metadata"]["generation"])
            if latest != self.es_seen[key]:           # changed while we were fetching: go again
                self.es_due.setdefault(key, time.monotonic() + ES_SYNC_DELAY)
            if error is None:
                data = {k: b64(v) for k, v in values.items()}
                digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
                skey = ("secrets", ns, target)
                secret = self.objects.get(skey)
                if secret is None:
                    self._store(KINDS[("", "v1", "secrets")], ns, target, {
                        "metadata": {"name": target, "annotations": {
                            "reconcile.external-secrets.io/data-hash": digest},
                            "labels": {"reconcile.external-secrets.io/managed": "true"},
                            "ownerReferences": [{"apiVersion": es["apiVersion"], "kind": "ExternalSecret",
                                                 "name": name, "uid": meta["uid"], "controller": True}]},
                        "type": "Opaque", "data": data}, None)
                elif secret.get("data") != data:
                    new = copy.deepcopy(secret)
                    new["data"] = data
                    new["metadata"].setdefault("annotations", {})[
                        "reconcile.external-secrets.io/data-hash"] = digest
                    self._store(KINDS[("", "v1", "secrets")], ns, target, new, secret)
                cond = {"type": "Ready", "status": "True", "reason": "SecretSynced",
                        "message": "secret synced", "lastTransitionTime": now_rfc3339()}
                status = {"refreshTime": now_rfc3339(), "conditions": [cond],
                          "syncedResourceVersion": "%s-%s" % (current["metadata"]["generation"], digest),
                          "binding": {"name": target}}
            else:
                status = dict(current.get("status") or {}, conditions=[{
                    "type": "Ready", "status": "False", "reason": "SecretSyncedError",
                    "message": error, "lastTransitionTime": now_rfc3339()}])
            self._set_status(key, status)

    def captured_env(self, ns, name):
        with self.lock:
            if ("deployments", ns, name) not in self.objects:
                self._not_found(KINDS[("apps", "v1", "deployments")], name)
            return copy.deepcopy(self.captured.get(("deployments", ns, name)))


# --------------------------------------------------------------------------- HTTP

def discovery(path):
    """The discovery documents; None when the path is not a discovery path."""
    if path == "/version":
        return {"major": "1", "minor": "30", "gitVersion": "v1.30.0-credops-emulator",
                "gitCommit": "emulator", "gitTreeState": "clean", "buildDate": "2024-01-01T00:00:00Z",
                "goVersion": "go1.22", "compiler": "gc", "platform": "linux/amd64"}
    if path == "/api":
        return {"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
    if path == "/apis":
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": "%s/%s" % (g, v), "version": v}],
             "preferredVersion": {"groupVersion": "%s/%s" % (g, v), "version": v}} for g, v in GROUPS.items()]}
    m = re.match(r"^/apis/([^/]+)$", path)
    if m and m.group(1) in GROUPS:
        g, v = m.group(1), GROUPS[m.group(1)]
        gv = {"groupVersion": "%s/%s" % (g, v), "version": v}
        return {"kind": "APIGroup", "apiVersion": "v1", "name": g, "versions": [gv], "preferredVersion": gv}
    m = re.match(r"^/api/(v1)$|^/apis/([^/]+)/([^/]+)$", path)
    if m:
        group, version = ("", "v1") if m.group(1) else (m.group(2), m.group(3))
        kinds = [k for (g, v, _plural), k in KINDS.items() if (g, v) == (group, version)]
        if group == "":
            kinds.append(NAMESPACE_KIND)
        if kinds:
            return {"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": kinds[0].api_version,
                    "resources": [r for k in kinds for r in k.discovery()]}
    return None


class Handler(BaseHTTPRequestHandler):
    server_version = "credops-k8s-emulator/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):            # one line per request, no bodies
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def _send(self, code, body):
        raw = json.dumps(body).encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""     # always drain (keep-alive)
        if self.command not in ("POST", "PUT", "PATCH"):
            return None
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            raise ApiError(400, "BadRequest", "the body of the request could not be decoded as JSON")

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        cluster = self.server.cluster
        try:
            body = self._body()
            m = EMU_RE.match(url.path)
            if m and method == "GET":
                return self._emulator(cluster, m.group("ns"), m.group("name"), m.group("what"), query)
            token = self.server.token
            if token and self.headers.get("Authorization") != "Bearer " + token:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            doc = discovery(url.path.rstrip("/") or "/")
            if doc is not None and method == "GET":
                return self._send(200, doc)
            self._resource(cluster, method, url.path, query, body)
        except ApiError as exc:
            self._send(exc.code, exc.body)
        except Exception as exc:  # an emulator bug: answer like the API would, keep serving
            sys.stderr.write("internal error: %r\n" % (exc,))
            self._send(500, ApiError(500, "InternalError", "emulator internal error: %s" % type(exc).__name__).body)

    def _resource(self, cluster, method, path, query, body):
        m = PATH_RE.match(path)
        if not m:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        group, version = ("", "v1") if m.group("core") else (m.group("group"), m.group("version"))
        ns, plural, name, sub = m.group("ns"), m.group("plural"), m.group("name"), m.group("sub")
        if (group, plural) == ("", "namespaces") and ns is None and method == "GET":
            return self._send(200, self._namespace(cluster, name))
        kind = KINDS.get((group, version, plural))
        if kind is None or (sub and not (sub == "status" and kind.has_status)):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if name is None:
            if method == "GET":
                return self._send(200, cluster.list(kind, ns, query.get("labelSelector")))
            if method == "POST" and ns:
                return self._send(201, cluster.create(kind, ns, body))
        elif ns:
            if method == "GET":
                return self._send(200, cluster.get(kind, ns, name))
            if method == "PUT":
                return self._send(200, cluster.replace(kind, ns, name, body, sub))
            if method == "PATCH":
                ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                return self._send(200, cluster.patch(kind, ns, name, body, ctype, sub))
            if method == "DELETE" and not sub:
                return self._send(200, cluster.delete(kind, ns, name))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    @staticmethod
    def _namespace(cluster, name):
        def one(n):
            return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n},
                    "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}
        if name:
            return one(name)                              # every namespace exists here
        with cluster.lock:
            names = sorted({ns for (_plural, ns, _name) in cluster.objects} | {"default"})
        return {"kind": "NamespaceList", "apiVersion": "v1", "metadata": {}, "items": [one(n) for n in names]}

    def _emulator(self, cluster, ns, name, what, query):
        captured = cluster.captured_env(ns, name)
        if what == "env":
            return self._send(200, captured or {"generation": None, "env": {}, "containers": {}})
        var = query.get("var", "")
        value = ((captured or {}).get("env") or {}).get(var)
        if value is None or not cluster.provider_url:
            return self._send(503, {"status": "unhealthy", "payment_gateway": "rejected",
                                    "error": "no provider configured" if value is not None
                                    else "variable %s not captured (not rolled out?)" % var})
        try:
            status, _body = http_get(cluster.provider_url + "/v1/test", {"Authorization": "Bearer " + value})
        except (OSError, urllib.error.URLError) as exc:
            return self._send(503, {"status": "unhealthy", "payment_gateway": "unreachable",
                                    "error": type(exc).__name__})
        if status == 200:
            return self._send(200, {"status": "healthy", "payment_gateway": "connected"})
        return self._send(503, {"status": "unhealthy", "payment_gateway": "rejected"})


def serve(port, token=DEFAULT_TOKEN, vault_addr=None, vault_token=None, provider_url=None,
          rollout_seconds=1.0, port_file=None, parent_pid=None, max_lifetime=3600.0):
    cluster = Cluster(vault_addr and loopback_only(vault_addr), vault_token,
                      provider_url and loopback_only(provider_url), rollout_seconds)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.cluster, server.token = cluster, token
    if port_file:
        tmp = port_file + ".tmp"
        Path(tmp).write_text(str(server.server_address[1]))
        os.replace(tmp, port_file)
    started = time.monotonic()

    def controllers():
        # bounded: ends with the server, when the parent is gone, or after max_lifetime
        while time.monotonic() - started < max_lifetime:
            if parent_pid and os.getppid() != parent_pid:
                break
            try:
                cluster.tick()
            except Exception as exc:  # keep the emulator alive; say what went wrong
                sys.stderr.write("controller error: %r\n" % (exc,))
            time.sleep(TICK)
        server.shutdown()

    threading.Thread(target=controllers, daemon=True).start()
    sys.stderr.write("k8s emulator on http://127.0.0.1:%d\n" % server.server_address[1])
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def main(argv=None):
    p = argparse.ArgumentParser(description="Kubernetes API emulator for the credops lab (not a real API server)")
    p.add_argument("--port", type=int, default=0, help="0: any free port (see --port-file)")
    p.add_argument("--port-file", help="write the bound port here once listening")
    p.add_argument("--token", default=os.environ.get("K8S_EMULATOR_TOKEN", DEFAULT_TOKEN),
                   help="bearer token the API requires ('' disables auth)")
    p.add_argument("--vault-addr", help="OpenBao/Vault address for ExternalSecrets (loopback only)")
    p.add_argument("--vault-token", default=os.environ.get("K8S_EMULATOR_VAULT_TOKEN"))
    p.add_argument("--provider-url", help="provider base URL for the health endpoint (loopback only)")
    p.add_argument("--rollout-seconds", type=float, default=1.0)
    p.add_argument("--parent-pid", type=int, help="exit when this parent process is gone")
    p.add_argument("--max-lifetime", type=float, default=3600.0)
    a = p.parse_args(argv)
    serve(a.port, a.token, a.vault_addr, a.vault_token, a.provider_url, a.rollout_seconds,
          a.port_file, a.parent_pid, a.max_lifetime)


# --------------------------------------------------------------------------- for fixtures

class K8sEmulator(object):
    """Start / stop the emulator as a subprocess, and talk to it from tests.

    emu = K8sEmulator(tmp_path, vault_addr="http://127.0.0.1:8200", vault_token="root")
    emu.start(); emu.seed([...]); ...; emu.stop()       (or: with K8sEmulator(...) as emu:)
    ``url``, ``token``, ``kubeconfig_path`` (cluster / context / user all named "emulator").
    """

    def __init__(self, workdir, port=None, vault_addr=None, vault_token=None, provider_url=None,
                 token=DEFAULT_TOKEN, rollout_seconds=1.0):
        self.workdir = Path(workdir)
        self.port, self.token = port, token
        self.vault_addr, self.vault_token, self.provider_url = vault_addr, vault_token, provider_url
        self.rollout_seconds = rollout_seconds
        self.proc = None
        self.log_path = self.workdir / "k8s-emulator.log"
        self.kubeconfig_path = self.workdir / "k8s-emulator.kubeconfig"

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def start(self, timeout=20.0):
        self.workdir.mkdir(parents=True, exist_ok=True)
        port_file = self.workdir / "k8s-emulator.port"
        if port_file.exists():
            port_file.unlink()
        cmd = [sys.executable, "-m", "tests.lab.k8s_emulator", "--port", str(self.port or 0),
               "--port-file", str(port_file), "--token", self.token, "--parent-pid", str(os.getpid()),
               "--rollout-seconds", str(self.rollout_seconds)]
        if self.vault_addr:
            cmd += ["--vault-addr", self.vault_addr]
        if self.provider_url:
            cmd += ["--provider-url", self.provider_url]
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        if self.vault_token:
            env["K8S_EMULATOR_VAULT_TOKEN"] = self.vault_token   # not on the command line
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("k8s emulator exited early (rc %s); see %s" % (self.proc.returncode, self.log_path))
            if port_file.exists():
                self.port = int(port_file.read_text())
                try:
                    if self.request("GET", "/version")[0] == 200:
                        self._write_kubeconfig()
                        return self
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("k8s emulator did not answer /version within %ss; see %s" % (timeout, self.log_path))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _write_kubeconfig(self):
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "emulator", "preferences": {},
               "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
               "users": [{"name": "emulator", "user": {"token": self.token}}],
               "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "emulator",
                                                             "namespace": "default"}}]}
        self.kubeconfig_path.write_text(json.dumps(cfg, indent=2))   # JSON is YAML

    def request(self, method, path, body=None, content_type="application/json", timeout=10.0):
        """One API call with the emulator's token. Returns (status, parsed JSON)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = content_type
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with opener.open(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    @staticmethod
    def collection_path(obj):
        api_version, kind = obj["apiVersion"], obj["kind"]
        ns = obj["metadata"].get("namespace", "default")
        for k in KINDS.values():
            if (k.api_version, k.kind) == (api_version, kind):
                prefix = "/api/v1" if not k.group else "/apis/%s" % k.api_version
                return "%s/namespaces/%s/%s" % (prefix, ns, k.plural)
        raise ValueError("the emulator does not know %s %s" % (api_version, kind))

    def seed(self, objects, wait=True, timeout=15.0):
        """Create objects through the API; with wait, until their Deployments rolled out."""
        created = []
        for obj in objects:
            status, body = self.request("POST", self.collection_path(obj), obj)
            if status != 201:
                raise RuntimeError("seeding %s %s failed: %s %s" % (
                    obj["kind"], obj["metadata"].get("name"), status, (body or {}).get("message")))
            created.append(body)
        if wait:
            for obj in created:
                if obj["kind"] == "Deployment":
                    self.wait_rollout(obj["metadata"]["namespace"], obj["metadata"]["name"], timeout)
        return created

    def env(self, namespace, name):
        """The environment the deployment's current pods captured (GET /_emulator/.../env)."""
        return self.request("GET", "/_emulator/namespaces/%s/deployments/%s/env" % (namespace, name))[1]

    def health(self, namespace, name, var):
        """(status, body) of the simulated app health endpoint."""
        return self.request("GET", "/_emulator/namespaces/%s/deployments/%s/health?var=%s" % (
            namespace, name, urllib.parse.quote(var)))

    def set_stuck(self, namespace, name, stuck=True):
        """Make a deployment's next rollouts never finish (or unstick it)."""
        status, body = self.request(
            "PATCH", "/apis/apps/v1/namespaces/%s/deployments/%s" % (namespace, name),
            {"metadata": {"annotations": {STUCK_ANNOTATION: "true" if stuck else None}}},
            content_type="application/merge-patch+json")
        if status != 200:
            raise RuntimeError("set_stuck %s/%s: %s %s" % (namespace, name, status, (body or {}).get("message")))
        return body

    def wait_rollout(self, namespace, name, timeout=15.0):
        """Bounded wait until the simulated pods captured the deployment's current generation."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, dep = self.request("GET", "/apis/apps/v1/namespaces/%s/deployments/%s" % (namespace, name))
            if status == 200 and (self.env(namespace, name) or {}).get("generation") == dep["metadata"]["generation"]:
                return dep
            time.sleep(0.1)
        raise RuntimeError("deployment %s/%s did not roll out within %ss" % (namespace, name, timeout))


if __name__ == "__main__":
    main()
