# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Mirrors STORE_ARGSPEC in plugins/module_utils/_stores/registry.py.
    DOCUMENTATION = r"""
options:
  store:
    description:
      - The credential's C(store) block from the inventory (C(rotation_credentials.NAME.store)),
        the secrets manager that holds the current and the previous value.
      - Options not used by the chosen O(store.kind) are ignored.
    type: dict
    required: true
    suboptions:
      kind:
        description:
          - V(vault_kv2) is HashiCorp Vault or OpenBao, KV version 2 (needs C(hvac)).
          - V(aws_secretsmanager) is AWS Secrets Manager, with its staging labels AWSPENDING,
            AWSCURRENT and AWSPREVIOUS (needs C(boto3)).
        type: str
        required: true
        choices: [aws_secretsmanager, vault_kv2]
      url:
        description:
          - V(vault_kv2) The server's address, for example V(https://vault.example.org:8200).
          - If not set, the environment variable E(VAULT_ADDR) (or E(BAO_ADDR)) is used.
        type: str
      auth_method:
        description:
          - V(vault_kv2) How to log in. V(token) uses O(store.token); V(approle) logs in with
            O(store.role_id) and O(store.approle_secret_id).
        type: str
        default: token
        choices: [token, approle]
      token:
        description:
          - V(vault_kv2) The token for O(store.auth_method=token).
          - If not set, the environment variable E(VAULT_TOKEN) (or E(BAO_TOKEN)) is used.
        type: str
      role_id:
        description:
          - V(vault_kv2) The AppRole role id. Default from E(VAULT_ROLE_ID).
        type: str
      approle_secret_id:
        description:
          - V(vault_kv2) The AppRole secret id. Default from E(VAULT_SECRET_ID).
          - Named so it cannot be confused with O(store.secret_id), the AWS secret's name.
        type: str
      approle_mount:
        description:
          - V(vault_kv2) Where the AppRole auth method is mounted.
        type: str
        default: approle
      namespace:
        description:
          - V(vault_kv2) The Vault Enterprise / OpenBao namespace. Default from E(VAULT_NAMESPACE).
        type: str
      mount:
        description:
          - V(vault_kv2) The mount point of the KV version 2 engine.
        type: str
        default: secret
      path:
        description:
          - V(vault_kv2) The secret's path under O(store.mount), for example
            V(api-credentials/payment-gateway-api). Required for V(vault_kv2).
        type: str
      field:
        description:
          - The key in the secret that holds the value.
          - V(vault_kv2) A key of the secret's data; when not set, V(value). The rotation
            also keeps C(key_id), C(previous_<field>), C(previous_key_id), C(rotated_at),
            C(rotated_by), C(rotation_verified_at) and C(rotation_phase) beside it; other keys
            of the secret are left as they are.
          - V(aws_secretsmanager) When set, the SecretString is a JSON object and the value
            is this key (the other keys are kept in every new version); when not set, the whole
            SecretString is the value.
        type: str
      validate_certs:
        description:
          - Verify the server's TLS certificate. Leave on outside a lab.
        type: bool
        default: true
      ca_cert:
        description:
          - A PEM CA bundle to verify the server's certificate against.
            Default from E(VAULT_CACERT).
        type: path
      timeout:
        description:
          - Seconds to wait for one answer from the store.
        type: int
        default: 30
      secret_id:
        description:
          - V(aws_secretsmanager) The secret's name or ARN. Required for
            V(aws_secretsmanager). The secret is created on the first rotation if it does not
            exist.
        type: str
      region:
        description:
          - V(aws_secretsmanager) The AWS region. Default from E(AWS_REGION) or
            E(AWS_DEFAULT_REGION).
        type: str
      endpoint_url:
        description:
          - V(aws_secretsmanager) Another endpoint (a VPC endpoint, a test server). Default
            from E(AWS_ENDPOINT_URL_SECRETS_MANAGER) or E(AWS_ENDPOINT_URL).
        type: str
      profile:
        description:
          - V(aws_secretsmanager) A named profile of the AWS config files. Default from
            E(AWS_PROFILE); otherwise the usual AWS credential chain (environment, instance
            or pod role).
        type: str
"""


# The same block, optional, for modules that can also work without a store
# (credops.rotation.revoke_key reads the value to revoke from it when given). Derived from
# DOCUMENTATION so the two cannot drift; set after the class body because ansible-test's
# yamllint reads a fragment's class body as string literals only (DOCUMENTATION is linted).
ModuleDocFragment.OPTIONAL = ModuleDocFragment.DOCUMENTATION.replace(
    "        the secrets manager that holds the current and the previous value.\n"
    "      - Options not used by the chosen O(store.kind) are ignored.\n"
    "    type: dict\n"
    "    required: true\n",
    "        the secrets manager that holds the current and the previous value.\n"
    "      - Options not used by the chosen O(store.kind) are ignored.\n"
    "      - Optional here; see the module's description of what it reads from the store.\n"
    "    type: dict\n"
    "    required: false\n", 1)
