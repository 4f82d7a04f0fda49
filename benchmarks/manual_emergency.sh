#!/usr/bin/env bash
# The same emergency rotation done by hand, for comparison: revoke the compromised key first, issue and
# store a new one (curl, the bao CLI), then every consumer host at once over ssh (write, restart).
# Env: PROVIDER PROVIDER_ADMIN_TOKEN VAULT_ADDR VAULT_TOKEN KV_PATH OLD_ID SSH_KEY HOSTS BAO
set -euo pipefail
ssh_opts=(-i "$SSH_KEY" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5)
curl -sf -X DELETE -H "Authorization: Bearer $PROVIDER_ADMIN_TOKEN" "$PROVIDER/v1/api-keys/$OLD_ID" >/dev/null
resp=$(curl -sf -X POST -H "Authorization: Bearer $PROVIDER_ADMIN_TOKEN" -H 'Content-Type: application/json' \
  -d '{"name":"production-integration"}' "$PROVIDER/v1/api-keys")
new_key=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["api_key"])' <<<"$resp")
new_id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$resp")
"$BAO" kv put "secret/$KV_PATH" api_key="$new_key" key_id="$new_id" >/dev/null
pids=()
for h in $HOSTS; do
  # shellcheck disable=SC2029  # $new_key is meant to expand here, on the client
  ssh "${ssh_opts[@]}" "root@$h" "sed -i 's|^PAYMENT_API_KEY=.*|PAYMENT_API_KEY=$new_key|' /etc/application/environment && systemctl restart payment-app.service" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
