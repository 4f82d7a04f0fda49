#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: kubernetes_consumer
short_description: Deliver a rotated credential to a Kubernetes consumer and roll its Deployments
description:
  - Puts a credential's new value where a Kubernetes workload reads it, then restarts the
    Deployments that use it and waits until their rollouts are complete.
  - Direct mode (O(secret) without O(external_secret)) writes one key of a Secret. The Secret
    is created when missing; otherwise only that key is changed (a merge patch guarded by
    the Secret's resourceVersion). Nothing changes when the key already holds the value.
  - External Secrets mode (O(external_secret)) expects the value to be in the secrets store
    already. When the target Secret does not hold it yet, the ExternalSecret is annotated
    C(force-sync=<unix time>) so that the External Secrets Operator syncs now, and the module
    waits until the Secret's key holds the value.
  - Deployments are restarted exactly like C(kubectl rollout restart) (the pod template
    annotation C(kubectl.kubernetes.io/restartedAt)) when the Secret changed, and waited on
    the way C(kubectl rollout status) decides, within O(wait_timeout).
  - A run interrupted between changing the Secret and restarting finishes on the next run,
    because the Secret records when this module changed it (annotation C(credops.rotation/updated-at),
    or the ExternalSecret's C(force-sync)); Deployments whose pods are older than that are
    restarted even though the Secret is unchanged now.
  - Values are compared by digest and are never returned, logged or put in a message.
version_added: 0.1.0
author: credops.rotation maintainers (@credops)
extends_documentation_fragment:
  - credops.rotation.kubernetes
attributes:
  check_mode:
    support: full
    description: Reports whether the Secret would change and which Deployments would be restarted, changes nothing.
  diff_mode:
    support: partial
    description: Shows which key would change and the restart annotations, never a value.
options:
  credential:
    description: Name of the credential, used in messages and recorded on a Secret this module creates.
    type: str
    required: true
  namespace:
    description: Namespace of the Secret, the ExternalSecret and the Deployments.
    type: str
    required: true
  secret:
    description:
      - Name of the Secret that holds the credential.
      - Required unless O(external_secret) is set; with it, defaults to the ExternalSecret's
        C(spec.target.name) and, when given, must be that name.
    type: str
  key:
    description: The key in the Secret's data that holds the credential (for example V(api_key)).
    type: str
    required: true
  value:
    description:
      - The credential's new value.
      - In External Secrets mode this is the value expected in the Secret after the sync; it
        is not written anywhere by this module.
    type: str
    required: true
  external_secret:
    description:
      - Name of an External Secrets Operator C(ExternalSecret) (group C(external-secrets.io),
        the version the cluster prefers) that fills the Secret from the store.
    type: str
  deployments:
    description: Deployments (in O(namespace)) that read the Secret.
    type: list
    elements: str
    default: []
  restart:
    description:
      - Restart the Deployments when the Secret changed (or a previous run's change was not
        rolled out yet).
      - V(false) leaves the pods alone; they keep the old value until they restart.
    type: bool
    default: true
  force_restart:
    description: Restart the Deployments even when the Secret did not change.
    type: bool
    default: false
  wait:
    description: Wait for the Deployments' rollouts to complete (within O(wait_timeout)).
    type: bool
    default: true
  wait_timeout:
    description:
      - Seconds to wait for the External Secrets sync, and separately for all rollouts.
      - A rollout that reports C(ProgressDeadlineExceeded) fails at once.
    type: int
    default: 120
notes:
  - Needs C(get), C(create) and C(patch) on C(secrets), C(get) and C(patch) on
    C(deployments) (group C(apps)) and, in External Secrets mode, C(get) and C(patch) on
    C(externalsecrets) (group C(external-secrets.io)) in O(namespace).
seealso:
  - name: kubectl rollout
    description: What the restart and the wait imitate.
    link: https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/
  - name: External Secrets Operator, force sync
    description: The annotation used to trigger a sync.
    link: https://external-secrets.io/latest/introduction/faq/
'''

EXAMPLES = r'''
- name: Write the new API key into the Secret and roll the app
  credops.rotation.kubernetes_consumer:
    credential: payment-gateway-api
    namespace: payments
    secret: payment-gateway-secret
    key: api_key
    value: "{{ new_api_key }}"
    deployments: [mobile-backend]
    kubeconfig: ~/.kube/prod.yaml
    context: prod-cluster

- name: The store already holds the new key; make the operator sync and roll the app
  credops.rotation.kubernetes_consumer:
    credential: payment-gateway-api
    namespace: payments
    external_secret: payment-gateway-secret
    key: api_key
    value: "{{ new_api_key }}"
    deployments: [mobile-backend]
    wait_timeout: 300

- name: Only restart (the Secret is managed elsewhere), with a service account token
  credops.rotation.kubernetes_consumer:
    credential: payment-gateway-api
    namespace: payments
    secret: payment-gateway-secret
    key: api_key
    value: "{{ current_api_key }}"
    deployments: [mobile-backend, mobile-worker]
    force_restart: true
    host: https://k8s.example.org:6443
    api_key: "{{ lookup('ansible.builtin.env', 'K8S_TOKEN') }}"
    ca_cert: /etc/pki/k8s-ca.pem
'''

RETURN = r'''
secret_changed:
  description: Whether the Secret's key changed (or, in check mode, would change).
  returned: always
  type: bool
  sample: true
secret:
  description: Name of the Secret that holds the credential (the ExternalSecret's target in External Secrets mode).
  returned: always
  type: str
  sample: payment-gateway-secret
namespace:
  description: The namespace.
  returned: always
  type: str
  sample: payments
restarted:
  description: Deployments restarted (or, in check mode, that would be restarted).
  returned: always
  type: list
  elements: str
  sample: [mobile-backend]
rollouts:
  description:
    - Rollout state per Deployment name, after waiting (or as found, in check mode or with O(wait=false)).
  returned: always
  type: dict
  sample:
    mobile-backend:
      generation: 4
      observedGeneration: 4
      replicas: 2
      updatedReplicas: 2
      availableReplicas: 2
      ready: true
      failed: false
      message: deployment mobile-backend successfully rolled out
  contains:
    generation:
      description: C(metadata.generation) of the Deployment.
      type: int
    observedGeneration:
      description: C(status.observedGeneration) of the Deployment.
      type: int
    ready:
      description: Whether the rollout is complete, as C(kubectl rollout status) decides.
      type: bool
    failed:
      description: Whether the rollout exceeded its progress deadline.
      type: bool
    message:
      description: What C(kubectl rollout status) would print.
      type: str
step:
  description: The step that failed (on failure only).
  returned: failure
  type: str
  sample: deploy
'''

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.credops.rotation.plugins.module_utils._consumers.kubernetes import (
    HAS_KUBERNETES,
    KUBERNETES_CONNECTION_ARGSPEC,
    KUBERNETES_IMPORT_ERROR,
    KubernetesConsumer,
    RESTARTED_AT,
    api_client_from_options,
    apply,
)
from ansible_collections.credops.rotation.plugins.module_utils._module import RotationModule, merge_options


def argument_spec():
    return merge_options(dict(
        credential=dict(type="str", required=True),
        namespace=dict(type="str", required=True),
        secret=dict(type="str", no_log=False),
        key=dict(type="str", required=True, no_log=False),
        value=dict(type="str", required=True, no_log=True),
        external_secret=dict(type="str", no_log=False),
        deployments=dict(type="list", elements="str", default=[]),
        restart=dict(type="bool", default=True),
        force_restart=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=120),
    ), KUBERNETES_CONNECTION_ARGSPEC)


def diff_of(params, result):
    """Key presence and restart annotations only: never a value, not even a digest."""
    before = {"secret": result["secret"], "key": params["key"]}
    after = dict(before)
    if result["secret_changed"]:
        before["value"], after["value"] = "(previous value)", "(new value)"
    if result["restarted"]:
        before[RESTARTED_AT] = dict((n, "(previous)") for n in result["restarted"])
        after[RESTARTED_AT] = dict((n, "(now)") for n in result["restarted"])
    return {"before": before, "after": after}


def main():
    module = RotationModule(argument_spec(), required_one_of=[("secret", "external_secret")])
    if not HAS_KUBERNETES:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=KUBERNETES_IMPORT_ERROR)
    p = module.params
    if p["wait_timeout"] < 0:
        module.fail_json(msg="credential '%s': wait_timeout must be >= 0" % p["credential"])
    result = {}

    def work():
        api = api_client_from_options(p, credential=p["credential"])
        consumer = KubernetesConsumer(api, p["credential"], p["namespace"], check_mode=module.check_mode)
        apply(consumer, p["secret"], p["key"], p["value"], external_secret=p["external_secret"],
              deployments=p["deployments"], restart=p["restart"], force_restart=p["force_restart"],
              wait=p["wait"], wait_timeout=p["wait_timeout"], result=result)

    # what already happened is reported too (changed: the Secret may hold the new value)
    module.run(work, fields=result)
    if module._diff:
        result["diff"] = diff_of(p, result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
