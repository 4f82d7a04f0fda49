#!/usr/bin/env bash
# The same standard rotation done by hand, for comparison: curl, the bao CLI, ssh + systemctl.
# Env: PROVIDER PROVIDER_ADMIN_TOKEN VAULT_ADDR VAULT_TOKEN KV_PATH OLD_ID SSH_KEY HOSTS BAO
set -euo pipefail
ssh_opts=(-i "$SSH_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5)
resp=$(curl -sf -X POST -H "Authorization: Bearer $PROVIDER_ADMIN_TOKEN" -H 'Content-Type: application/json' \
  -d '{"name":"production-integration"}' "$PROVIDER/v1/api-keys")
new_key=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])' <<<"$resp")
new_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$resp")
old_key=$("$BAO" kv get -field=api_key "secret/$KV_PATH")
"$BAO" kv put "secret/$KV_PATH" api_key="$new_key" key_id="$new_id" previous_api_key="$old_key" previous_key_id="$OLD_ID" >/dev/null
for h in $HOSTS; do
  # shellcheck disable=SC2029  # $new_key is meant to expand here, on the client
  ssh "${ssh_opts[@]}" "root@$h" "sed -i 's|^PAYMENT_API_KEY=.*|PAYMENT_API_KEY=$new_key|' /etc/application/environment && systemctl restart payment-app.service"
  for _ in $(seq 1 100); do
    curl -sf "http://$h:8080/health/payment-integration" >/dev/null && break
    sleep 0.2
  done
done
curl -sf -X DELETE -H "Authorization: Bearer $PROVIDER_ADMIN_TOKEN" "$PROVIDER/v1/api-keys/$OLD_ID" >/dev/null
"$BAO" kv put "secret/$KV_PATH" api_key="$new_key" key_id="$new_id" >/dev/null
