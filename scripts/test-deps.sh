#!/usr/bin/env bash
# Installs everything the test suite talks to (idempotent, quiet when already there):
# Python packages used as independent protocol peers, and Debian packages (browser, Redis).
set -euo pipefail
PY_PKGS=(msgpack websockets)
APT_PKGS=()

need_py=()
for p in "${PY_PKGS[@]}"; do
  python3 -c "import ${p//-/_}" 2>/dev/null || need_py+=("$p")
done
if [ ${#need_py[@]} -gt 0 ]; then
  echo "test-deps: pip install ${need_py[*]}" >&2
  python3 -m pip install -q --disable-pip-version-check "${need_py[@]}"
fi

need_apt=()
for p in "${APT_PKGS[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test-deps: apt-get install ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
