#!/usr/bin/env bash
# Installs everything the test suite talks to (idempotent, quiet when already there):
# Python packages used as independent protocol peers, and Debian packages (browser, Redis,
# promtool from prometheus for the /metrics check).
set -euo pipefail
PY_PKGS=(msgpack websockets)
APT_PKGS=(chromium chromium-driver redis-server prometheus)

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

# Stock MessagePack-RPC clients as users install them (crates/wspush/tests/stock_clients.rs).
stock="$(dirname "$0")/../crates/wspush/tests/stock"
# msgpack-rpc-python 0.4.1 (pre-2013 raw strings) needs tornado<5, which needs Python <= 3.9.
if [ ! -x "$stock/.venv/bin/python" ] || ! "$stock/.venv/bin/python" -c "import msgpackrpc" 2>/dev/null; then
  old_py=""
  for c in "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.{9,8,7,6}.*/bin/python \
           python3.9 python3.8 python3.7 python3.6; do
    if command -v "$c" >/dev/null 2>&1; then old_py=$c; break; fi
  done
  if [ -z "$old_py" ]; then
    echo "test-deps: msgpack-rpc-python needs Python 3.6-3.9 (pyenv install 3.9) for $stock/.venv" >&2
    exit 1
  fi
  echo "test-deps: $old_py -m venv $stock/.venv; pip install msgpack-rpc-python==0.4.1" >&2
  rm -rf "$stock/.venv"
  "$old_py" -m venv "$stock/.venv"
  "$stock/.venv/bin/python" -m pip install -q --disable-pip-version-check \
    msgpack-rpc-python==0.4.1 msgpack-python==0.5.6 tornado==4.5.3
fi
# Stock Centrifugo server-API clients (crates/wspush/tests/stock_api.rs): cent from PyPI in a
# virtualenv of its own (it needs Python >= 3.9 and pydantic 2), cent.js from npm below.
if [ ! -x "$stock/.venv-cent/bin/python" ] || ! "$stock/.venv-cent/bin/python" -c "import cent" 2>/dev/null; then
  echo "test-deps: python3 -m venv $stock/.venv-cent; pip install cent==5.2.0" >&2
  rm -rf "$stock/.venv-cent"
  python3 -m venv "$stock/.venv-cent"
  "$stock/.venv-cent/bin/python" -m pip install -q --disable-pip-version-check cent==5.2.0
fi
if [ ! -d "$stock/node_modules/msgpack-rpc-lite" ] || [ ! -d "$stock/node_modules/cent.js" ]; then
  echo "test-deps: npm ci in $stock" >&2
  (cd "$stock" && npm ci --no-audit --no-fund --loglevel=error)
fi
