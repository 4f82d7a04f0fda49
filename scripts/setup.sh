#!/usr/bin/env bash
# Install everything the collection, its lab and its test suite need, from nothing:
# Debian packages (apt-get), a virtualenv with the Python requirements, and the
# collection made importable as credops.rotation. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v ip >/dev/null || need+=(iproute2)
command -v ssh >/dev/null || need+=(openssh-client)
command -v unshare >/dev/null || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)
command -v chromium >/dev/null || need+=(chromium)   # renders the HTML due report in a test
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ "${#need[@]}" -gt 0 ]; then
  echo "setup: apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if ! cmp -s requirements-test.txt .venv/.requirements-installed 2>/dev/null \
   || ! cmp -s requirements.txt .venv/.requirements-main 2>/dev/null; then
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-test.txt
  cp requirements-test.txt .venv/.requirements-installed
  cp requirements.txt .venv/.requirements-main
fi
.venv/bin/pip check
# ansible-lint and antsibull-changelog pin an ansible-core of their own: a virtualenv of their own
# (tests/integration/test_lint.py, make lint).
if [ ! -x .venv-lint/bin/ansible-lint ] || [ ! -x .venv-lint/bin/antsibull-changelog ]; then
  "$PY" -m venv .venv-lint
  .venv-lint/bin/pip install -q --disable-pip-version-check 'ansible-lint>=26,<27' 'antsibull-changelog>=0.36,<1'
fi

# The checkout is the collection: make it importable as ansible_collections.credops.rotation.
mkdir -p .collections/ansible_collections/credops
ln -sfn ../../.. .collections/ansible_collections/credops/rotation
# The systemd hosts' Debian rootfs (debootstrap, about a minute, cached for later runs).
.venv/bin/python -m tests.lab.hosts rootfs
echo "setup: ok"
