# -*- coding: utf-8 -*-
# Copyright: credops.rotation contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by every module that talks to a Kubernetes cluster.

Mirrored by ``KUBERNETES_CONNECTION_ARGSPEC`` in
``plugins/module_utils/_consumers/kubernetes.py``; keep the two in step.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    DOCUMENTATION = r'''
options:
  kubeconfig:
    description:
      - Path to a kubeconfig file.
      - When neither O(kubeconfig), O(context) nor O(host) is set, the default kubeconfig
        (E(KUBECONFIG) or C(~/.kube/config)) is used, and when there is none, the in-cluster
        service account.
      - Can be set with the E(K8S_AUTH_KUBECONFIG) environment variable.
    type: path
  context:
    description:
      - The kubeconfig context to use. Defaults to the kubeconfig's current context.
      - Can be set with the E(K8S_AUTH_CONTEXT) environment variable.
    type: str
  host:
    description:
      - URL of the Kubernetes API server, for example V(https://k8s.example.org:6443).
      - Overrides the server of the kubeconfig when both are given; alone, no kubeconfig is read.
      - Can be set with the E(K8S_AUTH_HOST) environment variable.
    type: str
  api_key:
    description:
      - Bearer token to authenticate with, for example a service account token.
      - Overrides the kubeconfig's credentials when both are given.
      - Can be set with the E(K8S_AUTH_API_KEY) environment variable.
    type: str
  validate_certs:
    description:
      - Whether to verify the API server's TLS certificate.
      - When unset, the kubeconfig decides (verification on unless it says
        C(insecure-skip-tls-verify)); with O(host) alone, verification is on.
      - Can be set with the E(K8S_AUTH_VERIFY_SSL) environment variable.
    type: bool
    aliases: [verify_ssl]
  ca_cert:
    description:
      - Path to a CA bundle to verify the API server's certificate with.
      - Can be set with the E(K8S_AUTH_SSL_CA_CERT) environment variable.
    type: path
    aliases: [ssl_ca_cert]
requirements:
  - kubernetes (the official Kubernetes Python client)
notes:
  - The same E(K8S_AUTH_*) environment variables as M(kubernetes.core.k8s) are honoured.
'''
