#!/usr/bin/env bash
# Create or refresh the project virtualenv. Idempotent; called by `make`.
set -euo pipefail
VENV=${1:-.venv}
PYTHON=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating virtualenv in $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip >/dev/null

# Without an NVIDIA GPU, take the CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
if ! command -v nvidia-smi >/dev/null 2>&1 && ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  echo "setup: no NVIDIA GPU found, installing the CPU build of torch"
  "${PIP[@]}" install "torch==2.13.0" || "${PIP[@]}" install torch --index-url https://download.pytorch.org/whl/cpu
fi

echo "setup: installing clipcluster and its test/dev tools"
"${PIP[@]}" install -e ".[test,dev,bench]"

# Browser tests drive Debian's Chromium through Playwright (Playwright cannot download its own browser here).
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian's chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: WARNING could not install chromium; browser tests will fail" >&2
  else
    echo "setup: WARNING /usr/bin/chromium missing; install it (apt-get install chromium) for the browser tests" >&2
  fi
fi

# A first analysis compiles numba kernels for about a minute (issue 27): compile them now, into the cache `make`
# points jobs and tests at, and copy them to the one jobs typed in a shell use (~/.cache/clipcluster/numba). numba
# keys the cache by this checkout's path: another clone warms its own.
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$PWD/.numba_cache}
"$VENV/bin/python" -m clustering.devtools.warm_cache --also-user-cache | sed 's/^/setup: /' \
  || echo "setup: WARNING the numba warm-up failed; the first analysis will compile its kernels itself" >&2
echo "setup: done"
