# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kubernetes consumer kind's declarations: Deployments that read the value from a Secret
(written directly, or synced by an ExternalSecret) and are rolled to pick it up.

The work is done by the client code beside this file (``kubernetes.py``, the k8s_* modules);
this file imports no client library, so preflight, the schema, the dependency map and
discovery read it without one."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.credops.rotation.plugins.module_utils._consumers._base import VERIFY, Consumer

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _str():
    return dict(type="str")


def _secrets(consumer):
    return [s for s in (consumer.get("secret"), consumer.get("external_secret")) if s]


class KubernetesConsumer(Consumer):
    kind = "kubernetes"
    FIELDS = dict(
        name=_str(), kind=_str(), cluster=_str(), namespace=_str(), external_secret=_str(), secret=_str(),
        secret_key=_str(), deployments=dict(type="list", elements="str"),
        verify=dict(type="dict", options=VERIFY), wait_timeout=dict(type="int"),
    )
    REQUIRED = ("name", "kind", "cluster", "namespace", "deployments")
    REQUIRED_ONE_OF = (("secret",), ("external_secret",))
    TARGET = "cluster"
    MAP_FIELDS = ("cluster", "namespace", "secret", "external_secret", "deployments")
    SCANNED = True

    @classmethod
    def preflight(cls, report, path, consumer, inventory, claims, check):
        show = check.show
        check.host_ref(report, path + ".cluster", consumer.get("cluster"), inventory, what="cluster")
        if isinstance(consumer.get("cluster"), list):
            report.error(path + ".cluster", "must be one inventory host", "name the host that carries the kubeconfig/context")
        namespace = consumer.get("namespace")
        if check.required_str(report, path + ".namespace", namespace, "name the namespace, e.g. `namespace: payments`"):
            if not _DNS_LABEL.match(namespace):
                report.error(path + ".namespace", "%s is not a Kubernetes namespace name" % show(namespace),
                             "use lower-case letters, digits and '-', at most 63 characters")
        if consumer.get("secret") in (None, "") and consumer.get("external_secret") in (None, ""):
            report.error(path, "neither secret nor external_secret is given",
                         "name the Kubernetes Secret to write (`secret:`) or the ExternalSecret to force-sync "
                         "(`external_secret:`)")
        for field in ("secret", "external_secret"):
            value = consumer.get(field)
            if value not in (None, "") and (not isinstance(value, str) or not _DNS_SUBDOMAIN.match(value)):
                report.error("%s.%s" % (path, field), "%s is not a Kubernetes object name" % show(value),
                             "use lower-case letters, digits, '-' and '.'")
        deployments = consumer.get("deployments")
        if deployments in (None, []):
            report.error(path + ".deployments", "missing or empty",
                         "list the Deployments that use the Secret, e.g. `deployments: [mobile-backend]`")
        elif not isinstance(deployments, list):
            report.error(path + ".deployments", "must be a list of Deployment names",
                         "write e.g. `deployments: [%s]`" % (deployments if isinstance(deployments, str) else "app"))
        else:
            for index, dep in enumerate(deployments):
                if not isinstance(dep, str) or not _DNS_SUBDOMAIN.match(dep):
                    report.error("%s.deployments[%d]" % (path, index), "%s is not a Deployment name" % show(dep),
                                 "use lower-case letters, digits, '-' and '.'")

    @classmethod
    def preflight_with_store(cls, report, path, consumer, store_cls):
        """An ExternalSecret syncs what the store calls current; a store kind that keeps the new
        value beside the current one until every consumer verified it (its EXTERNAL_SECRET_PROBLEM)
        would have a force-sync deploy the old value (and later overwrite a Secret written directly)."""
        if consumer.get("external_secret") in (None, ""):
            return
        if store_cls is not None and store_cls.EXTERNAL_SECRET_PROBLEM:
            report.error(path + ".external_secret", store_cls.EXTERNAL_SECRET_PROBLEM,
                         "let the rotation write the Kubernetes Secret itself: `secret: NAME` without `external_secret:` "
                         "(and stop the ExternalSecret from managing that Secret)")

    @classmethod
    def listed(cls, credential, consumer, inventory):
        secrets = _secrets(consumer)
        return [{"credential": credential, "consumer": consumer.get("name"),
                 "cluster": consumer.get("cluster"), "namespace": consumer.get("namespace"),
                 "deployment": dep, "secrets": secrets}
                for dep in consumer.get("deployments") or []]

    @classmethod
    def drift(cls, listed, found, by_var, drift, not_scanned):
        listed_deps = {}
        for item in listed:
            listed_deps.setdefault((item["cluster"], item["namespace"], item["deployment"]), []).append(item)
        secret_owner = {}
        for item in listed:
            for secret in item["secrets"]:
                owners = secret_owner.setdefault((item["cluster"], item["namespace"], secret), [])
                if item["credential"] not in owners:
                    owners.append(item["credential"])
        for cluster in sorted(found):
            for ref in found[cluster] or []:
                key = (cluster, ref.get("namespace"), ref.get("deployment"))
                owners = secret_owner.get((cluster, ref.get("namespace"), ref.get("secret")), [])
                known = [i for i in listed_deps.get(key, []) if ref.get("secret") in i["secrets"]]
                if not known:
                    drift["unlisted"].append({
                        "kind": cls.kind, "cluster": cluster, "namespace": ref.get("namespace"),
                        "deployment": ref.get("deployment"), "secret": ref.get("secret"), "via": ref.get("via"),
                        "credentials": owners,
                        "message": "deployment %s/%s on %s uses Secret %s (%s) but no consumer of %s lists it" % (
                            ref.get("namespace"), ref.get("deployment"), cluster, ref.get("secret"), ref.get("via"),
                            " or ".join(owners) or "any credential")})
        for item in listed:
            cluster = item["cluster"]
            if cluster not in found:
                not_scanned.add((cls.kind, cluster))
                continue
            refs = [r for r in found[cluster] or []
                    if r.get("namespace") == item["namespace"] and r.get("deployment") == item["deployment"]
                    and r.get("secret") in item["secrets"]]
            if not refs:
                drift["missing"].append({
                    "kind": cls.kind, "credential": item["credential"], "consumer": item["consumer"],
                    "cluster": cluster, "namespace": item["namespace"], "deployment": item["deployment"],
                    "message": "%s.%s: deployment %s/%s on %s does not use Secret %s (gone, or renamed)" % (
                        item["credential"], item["consumer"], item["namespace"], item["deployment"], cluster,
                        " or ".join(item["secrets"]))})


def kubernetes_targets(credentials):
    """cluster -> {namespace: [secret names]} the map knows, for the discovery module (k8s_discover)."""
    targets = {}
    for record in (credentials or {}).values():
        for consumer in (record or {}).get("consumers") or []:
            if isinstance(consumer, dict) and consumer.get("kind") == KubernetesConsumer.kind and consumer.get("cluster"):
                namespaces = targets.setdefault(consumer["cluster"], {})
                secrets = namespaces.setdefault(consumer.get("namespace"), [])
                for secret in (consumer.get("secret"), consumer.get("external_secret")):
                    if secret and secret not in secrets:
                        secrets.append(secret)
    return targets
