#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: k8s_discover
short_description: Find the Deployments that use given Kubernetes Secrets
description:
  - Lists the Deployments of each given namespace and reports every one whose pod template
    refers to one of the given Secrets - C(env[].valueFrom.secretKeyRef), C(envFrom[].secretRef)
    (containers and init containers) or a C(secret) / C(projected) volume.
  - Only Deployment specs are read, never a Secret, so no credential value is ever seen.
  - Used by the discover_consumers playbook to compare a cluster with the dependency map.
version_added: 0.1.0
author: credops.rotation maintainers (@credops)
extends_documentation_fragment:
  - credops.rotation.kubernetes
attributes:
  check_mode:
    support: full
    description: Only reads; runs the same in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
options:
  namespaces:
    description:
      - Namespace to the names of the Secrets to look for in it (the
        P(credops.rotation.kubernetes_targets#filter) filter gives this per cluster host).
    type: dict
    required: true
'''

EXAMPLES = r'''
- name: Deployments that use the credentials' Secrets on this cluster
  credops.rotation.k8s_discover:
    namespaces: "{{ (rotation_credentials | credops.rotation.kubernetes_targets)[inventory_hostname] }}"
    kubeconfig: "{{ kubeconfig | default(omit) }}"
    context: "{{ kube_context | default(omit) }}"
  register: found
'''

RETURN = r'''
references:
  description: One entry per Deployment and Secret it uses.
  returned: success
  type: list
  elements: dict
  contains:
    namespace: {description: Namespace., type: str}
    deployment: {description: Deployment name., type: str}
    secret: {description: Secret name., type: str}
    via:
      description: How it refers to the Secret, e.g. C(env API_KEY in container app), C(envFrom in container app), C(volume tls).
      type: str
  sample: [{namespace: payments, deployment: mobile-backend, secret: payment-gateway-secret,
            via: "env PAYMENT_API_KEY in container app"}]
namespaces_scanned:
  description: The namespaces whose Deployments were listed.
  returned: success
  type: list
  elements: str
'''

import json

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.credops.rotation.plugins.module_utils._consumers.kubernetes import (
    HAS_KUBERNETES,
    KUBERNETES_CONNECTION_ARGSPEC,
    KUBERNETES_IMPORT_ERROR,
    api_client_from_options,
    to_rotation_error,
)
from ansible_collections.credops.rotation.plugins.module_utils._module import RotationModule


def _get(obj, *keys):
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def deployment_references(deployment, secrets):
    """(secret, via) pairs of a Deployment (API JSON, camelCase) for the Secrets in ``secrets``."""
    wanted = set(secrets or ())
    spec = _get(deployment, "spec", "template", "spec") or {}
    found = []

    def add(secret, via):
        if secret in wanted and (secret, via) not in found:
            found.append((secret, via))

    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            cname = container.get("name") or "?"
            for env in container.get("env") or []:
                add(_get(env, "valueFrom", "secretKeyRef", "name"), "env %s in container %s" % (env.get("name"), cname))
            for source in container.get("envFrom") or []:
                add(_get(source, "secretRef", "name"), "envFrom in container %s" % cname)
    for volume in spec.get("volumes") or []:
        add(_get(volume, "secret", "secretName"), "volume %s" % volume.get("name"))
        for projected in _get(volume, "projected", "sources") or []:
            add(_get(projected, "secret", "name"), "projected volume %s" % volume.get("name"))
    return found


def discover(api_client, namespaces):
    """Every (namespace, deployment, secret, via) for the wanted Secrets, sorted."""
    from kubernetes import client as k8s_client  # pylint: disable=import-outside-toplevel
    apps = k8s_client.AppsV1Api(api_client)
    references = []
    for namespace in sorted(namespaces):
        try:
            listing = apps.list_namespaced_deployment(namespace, _preload_content=False)
            items = json.loads(listing.data or b"{}").get("items") or []
        except Exception as exc:
            raise to_rotation_error(exc, None, "discover", "listing the Deployments of namespace %s" % namespace)
        for item in items:
            name = _get(item, "metadata", "name")
            for secret, via in deployment_references(item, namespaces[namespace]):
                references.append({"namespace": namespace, "deployment": name, "secret": secret, "via": via})
    return sorted(references, key=lambda r: (r["namespace"], r["deployment"], r["secret"], r["via"]))


def main():
    module = RotationModule(dict(namespaces=dict(type="dict", required=True)), KUBERNETES_CONNECTION_ARGSPEC)
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    namespaces = {}
    for namespace, secrets in (module.params["namespaces"] or {}).items():
        if isinstance(secrets, str):
            secrets = [secrets]
        namespaces[str(namespace)] = [str(s) for s in secrets or []]
    references = module.run(lambda: discover(api_client_from_options(module.params), namespaces))
    module.exit_json(changed=False, references=references, namespaces_scanned=sorted(namespaces))


if __name__ == "__main__":
    main()
