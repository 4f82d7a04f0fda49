# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Mirrors ISSUER_ARGSPEC in plugins/module_utils/_issuers/registry.py (the union of the
    # ARGSPEC of every kind in plugins/module_utils/_issuers/). Defaults are applied by the
    # issuer classes, not the argspec, so they are stated in the descriptions.
    DOCUMENTATION = r"""
options:
  issuer:
    description:
      - The credential's C(issuer) block from the inventory
        (C(rotation_credentials.<name>.issuer)), passed as it is.
      - Options a kind does not use are ignored; unknown options fail, which catches typos.
      - Secret sub-options (C(auth.token), C(auth.password), C(auth.value), C(admin_password),
        C(token), C(secret_id), C(secret_key), C(session_token)) are C(no_log) and masked by
        Ansible in every output.
    type: dict
    required: true
    suboptions:
      kind:
        description:
          - Where a new value is created and an old one revoked.
          - C(rest) any HTTP key-management API, described by C(base_url), C(auth), C(create),
            C(revoke), and optionally C(get), C(test), C(usage).
          - C(aws_iam) an IAM user's access key pair (C(user_name)).
          - C(postgres) a login role's password (C(role)), over a real connection.
          - C(vault_pki) a certificate and private key from a Vault / OpenBao PKI role.
          - C(generated) a high-entropy value made locally; nothing to revoke.
        type: str
        required: true
        choices: [aws_iam, generated, postgres, rest, vault_pki]
      validate_certs:
        description:
          - Kinds C(rest), C(aws_iam), C(vault_pki). Per-issuer override of the module's
            O(validate_certs).
        type: bool
      ca_path:
        description:
          - Kinds C(rest), C(aws_iam), C(vault_pki), C(postgres) (as C(sslrootcert)).
            Per-issuer override of the module's O(ca_path).
        type: path
      timeout:
        description:
          - Per-issuer override of the module's O(timeout) (seconds; C(postgres) uses it as the
            connect timeout).
        type: float
      retries:
        description:
          - Kinds C(rest), C(aws_iam). Per-issuer override of the module's O(retries).
        type: int
      base_url:
        description:
          - Kind C(rest), required. The API's root URL; every C(path) is appended to it.
        type: str
      auth:
        description:
          - Kind C(rest). How the rotation authenticates to the key-management API.
        type: dict
        suboptions:
          type:
            description:
              - "C(bearer) sends C(Authorization: Bearer <token>) (default when C(token) is set),
                C(basic) sends C(username)/C(password), C(header) sends C(<name>: <value>),
                C(none) sends nothing."
            type: str
            choices: [bearer, basic, header, none]
          token:
            description:
              - "The bearer token (C(type=bearer))."
            type: str
          username:
            description:
              - "The user name (C(type=basic))."
            type: str
          password:
            description:
              - "The password (C(type=basic))."
            type: str
          name:
            description:
              - "The header's name, for example C(X-Admin-Key) (C(type=header))."
            type: str
          value:
            description:
              - "The header's value (C(type=header))."
            type: str
      create:
        description:
          - Kind C(rest), required. The call that creates a new key.
        type: dict
        suboptions:
          method:
            description:
              - "HTTP method, default C(POST)."
            type: str
          path:
            description:
              - "Path under O(issuer.base_url), required. No placeholders."
            type: str
          body:
            description:
              - "JSON body to send."
            type: raw
          form:
            description:
              - "Form-encoded body to send instead of O(issuer.create.body)."
            type: dict
          expect_status:
            description:
              - "HTTP statuses that mean success; default any 2xx."
            type: list
            elements: int
          secret_path:
            description:
              - Required. JMESPath into the JSON response that selects the new secret. If it finds
                nothing, the error names the credential and this field and shows the response's
                key names, never its values.
            type: str
          id_path:
            description:
              - JMESPath into the JSON response that selects the new key's id. Without it the API
                has no ids and O(issuer.revoke) cannot address a key.
            type: str
      revoke:
        description:
          - Kind C(rest). The call that revokes a key. HTTP 404 and 410 mean it is already
            revoked (not changed).
        type: dict
        suboptions:
          method:
            description:
              - "HTTP method, default C(DELETE)."
            type: str
          path:
            description:
              - "Path under O(issuer.base_url); C({id}) is the key id, URL-quoted."
            type: str
          body:
            description:
              - "JSON body to send."
            type: raw
          expect_status:
            description:
              - "HTTP statuses that mean revoked; default any 2xx."
            type: list
            elements: int
      get:
        description:
          - Kind C(rest), optional. A call that reads one key, so check mode and idempotence
            can tell whether it is still active. Without it that is unknown.
        type: dict
        suboptions:
          method:
            description:
              - "HTTP method, default C(GET)."
            type: str
          path:
            description:
              - "Path under O(issuer.base_url); C({id}) is the key id. 404 and 410 mean gone."
            type: str
          expect_status:
            description:
              - "HTTP statuses that mean found; default any 2xx."
            type: list
            elements: int
          active_path:
            description:
              - JMESPath into the response that is true while the key is active, for example
                C(status == 'active'). Without it any found key counts as active.
            type: str
      test:
        description:
          - Kind C(rest), optional. A call made with a key itself, to prove it works (2xx) or is
            dead (401 or 403). Any other answer is an error.
        type: dict
        suboptions:
          method:
            description:
              - "HTTP method, default C(GET)."
            type: str
          path:
            description:
              - "Path under O(issuer.base_url)."
            type: str
          header:
            description:
              - "The header that carries the key, default C(Authorization)."
            type: str
          format:
            description:
              - "The header's value, C({secret}) is the key; default C(Bearer {secret})."
            type: str
      usage:
        description:
          - Kind C(rest), optional. The issuer's record of who used a key and when, for the
            revoke guard (see O(credops.rotation.revoke_key#module:unused_since) of M(credops.rotation.revoke_key)).
        type: dict
        suboptions:
          method:
            description:
              - "HTTP method, default C(GET)."
            type: str
          path:
            description:
              - Path under O(issuer.base_url); C({id}) is the key id and C({since}) an ISO-8601 UTC
                time, both URL-quoted.
            type: str
          events_path:
            description:
              - "Required. JMESPath to the list of uses in the response."
            type: str
          time_path:
            description:
              - "Required. JMESPath in one use, when it happened (ISO-8601)."
            type: str
          source_path:
            description:
              - "JMESPath in one use, who used it, for the report."
            type: str
      user_name:
        description:
          - Kind C(aws_iam), required. The IAM user whose access key is rotated.
        type: str
      delete_inactive:
        description:
          - Kind C(aws_iam). When the user already has two keys (the AWS limit), delete the
            oldest I(inactive) one to make room. Active keys are never deleted. Default C(false).
        type: bool
      revoke_mode:
        description:
          - Kind C(aws_iam). C(delete) (default) deletes the old key; C(deactivate) sets it
            Inactive (it still counts against the two-key limit).
        type: str
        choices: [delete, deactivate]
      endpoint_url:
        description:
          - Kind C(aws_iam). Endpoint URL for IAM and STS alike, for a single-endpoint service such
            as moto or LocalStack (default the AWS ones, or C(AWS_ENDPOINT_URL)).
        type: str
      region:
        description:
          - Kind C(aws_iam). AWS region (default the SDK's, else C(us-east-1)).
        type: str
      profile:
        description:
          - Kind C(aws_iam). AWS profile to run the rotation as (default the SDK's).
        type: str
      access_key:
        description:
          - Kind C(aws_iam). Access key id to run the rotation as (default the SDK's chain).
        type: str
      secret_key:
        description:
          - Kind C(aws_iam). Secret access key to run the rotation as.
        type: str
      session_token:
        description:
          - Kind C(aws_iam). Session token to run the rotation as.
        type: str
      wait_timeout:
        description:
          - Kind C(aws_iam). Seconds to wait until AWS accepts a new key (STS answers as the
            user); default 60, C(0) does not wait. A key not accepted in time is deleted again
            and the run fails.
        type: int
      host:
        description:
          - Kind C(postgres). Server host (default C(PGHOST), else C(localhost)).
        type: str
      port:
        description:
          - Kind C(postgres). Server port (default C(PGPORT), else 5432).
        type: int
      db:
        description:
          - Kind C(postgres). Database to connect to (default C(PGDATABASE), else C(postgres)).
        type: str
      admin_user:
        description:
          - Kind C(postgres). A role with CREATEROLE (and ADMIN OPTION on O(issuer.role) on
            PostgreSQL 16+) or superuser (default C(PGUSER), else C(postgres)).
        type: str
      admin_password:
        description:
          - Kind C(postgres). Its password (default C(PGPASSWORD)).
        type: str
      role:
        description:
          - Kind C(postgres), required unless O(issuer.roles). The login role whose password is rotated.
          - Kind C(vault_pki), required. The PKI role to issue from.
        type: str
      roles:
        description:
          - Kind C(postgres). The alternating-roles (zero-downtime) procedure, instead of O(issuer.role),
            with two login roles that have the same grants. The idle one (NOLOGIN) gets the new password
            and LOGIN. The key id is the role's name, so a systemd consumer's C(id_env_var) gets it as the
            user name. Revoking makes the old role idle again (NOLOGIN, an unknown password, its sessions
            ended), and the revoke guard sees the old role's open sessions. See docs/runbooks/database.md.
        type: list
        elements: str
      valid_until_days:
        description:
          - Kind C(postgres). Also set C(VALID UNTIL) this many days ahead. Unset, the role's
            C(VALID UNTIL) is left alone.
        type: int
      sslmode:
        description:
          - Kind C(postgres). libpq C(sslmode) (default libpq's, C(prefer)).
        type: str
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      length:
        description:
          - Kind C(generated). Characters to draw, not counting O(issuer.prefix); default 48.
            Fewer than 128 bits of entropy is refused.
          - Kind C(postgres). Length of the new password; default 32, at least 16.
        type: int
      alphabet:
        description:
          - Kind C(generated). C(urlsafe) (default), C(hex), C(alnum), or any other string, whose
            characters are drawn from.
        type: str
      prefix:
        description:
          - Kind C(generated). A fixed prefix, for example C(whsec_).
        type: str
      url:
        description:
          - Kind C(vault_pki). Vault / OpenBao address (default C(VAULT_ADDR)).
        type: str
      token:
        description:
          - Kind C(vault_pki). Vault token (default C(VAULT_TOKEN)).
        type: str
      auth_method:
        description:
          - Kind C(vault_pki). C(token) (default) or C(approle) (default when O(issuer.role_id) is set).
        type: str
        choices: [token, approle]
      role_id:
        description:
          - Kind C(vault_pki). AppRole role id.
        type: str
      secret_id:
        description:
          - Kind C(vault_pki). AppRole secret id.
        type: str
      namespace:
        description:
          - Kind C(vault_pki). Vault namespace (default C(VAULT_NAMESPACE), else C(BAO_NAMESPACE)).
        type: str
      mount:
        description:
          - Kind C(vault_pki). Mount path of the PKI engine; default C(pki).
        type: str
      common_name:
        description:
          - Kind C(vault_pki), required. The certificate's common name.
        type: str
      alt_names:
        description:
          - Kind C(vault_pki). DNS subject alternative names.
        type: list
        elements: str
      ip_sans:
        description:
          - Kind C(vault_pki). IP subject alternative names.
        type: list
        elements: str
      ttl:
        description:
          - Kind C(vault_pki). Requested lifetime, for example C(720h) (the role's default if unset).
        type: str
"""
