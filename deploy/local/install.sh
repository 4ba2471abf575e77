#!/usr/bin/env bash
# Idempotent set-up of a fresh machine for clusterjobs: Debian packages, the virtualenv at
# .venv/, the Python packages (with the two known install hurdles solved here), and the
# Hadoop jars from Maven Central. Re-running it with unchanged inputs does almost nothing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="$root/.venv"
stamp="$venv/.install-stamp"
log() { printf '[install] %s\n' "$*" >&2; }
# Run a noisy step with its output in a log; show the log's tail only when the step fails.
quiet() {
  local out; out="$(mktemp)"
  if ! "$@" >"$out" 2>&1; then
    log "error: '$*' failed; its last lines:"; tail -n 40 "$out" >&2; rm -f "$out"; exit 1
  fi
  rm -f "$out"
}

# --- Debian packages -------------------------------------------------------------------
apt_packages=(zookeeper libslf4j-java prometheus libpython3.11 clang-16 lld-16 llvm-16
              openjdk-17-jdk-headless maven python3-venv curl procps chromium busybox-static)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  log "apt-get install golang-go (needed to build pyeoskit)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends golang-go >/dev/null
fi
export PATH="$PATH:/usr/local/go/bin"

# --- Inputs that decide whether the Python/Maven part must run again ------------------------
inputs_hash="$(cat "$root/setup.cfg" "$root/pyproject.toml" "$root/deploy/local/install.sh" \
  "$root/deploy/local/hadoop-pom.xml" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs_hash" ] \
   && [ -x "$venv/bin/clusterjobs" ] && [ -d "$venv/share/hadoop/lib" ]; then
  log "up to date ($venv)"
  exit 0
fi

# --- Virtualenv ------------------------------------------------------------------------
python="${PYTHON:-}"
if [ -z "$python" ]; then
  for c in python3.11 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python="$(command -v "$c")"; break
    fi
  done
fi
[ -n "$python" ] || { log "error: Python 3.11 not found (set PYTHON=/path/to/python3.11)"; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv with $python"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
"${pip[@]}" install --upgrade pip setuptools wheel

# http-parser 0.9.0 (a pymesos dependency) has a C extension that no longer compiles on 3.11,
# and its setup.py makes the extension mandatory. Its pure-Python parser is what pymesos falls
# back to, so build a wheel of just the Python modules from the unchanged PyPI sdist.
if ! "$venv/bin/python" -c 'import http_parser.http' 2>/dev/null; then
  log "http-parser 0.9.0 (pure Python)"
  work="$(mktemp -d)"
  "${pip[@]}" download --no-deps --no-binary :all: http-parser==0.9.0 -d "$work"
  tar -xzf "$work"/http-parser-0.9.0.tar.gz -C "$work"
  (cd "$work/http-parser-0.9.0" && quiet "$venv/bin/python" -c \
     'from setuptools import setup; setup(name="http-parser", version="0.9.0", packages=["http_parser"])' \
     bdist_wheel -d "$work/dist")
  "${pip[@]}" install --no-deps "$work"/dist/http_parser-0.9.0-*.whl
  rm -rf "$work"
fi

# pyeoskit 1.1.12 ships only an sdist for Linux/3.11; its build needs Cython, scikit-build,
# cmake and Go but declares none of them, so install them and build without isolation.
if ! "$venv/bin/python" -c 'import pyeoskit' 2>/dev/null; then
  log "pyeoskit 1.1.12 (built from source with Go; takes a few minutes the first time)"
  "${pip[@]}" install scikit-build cmake ninja cython
  quiet "${pip[@]}" install --no-build-isolation pyeoskit==1.1.12
fi

log "clusterjobs and its Python dependencies"
quiet "${pip[@]}" install -e "$root[test]"

# --- Hadoop jars (NameNode + DataNode run from them with java -cp) ---------------------
log "Hadoop jars from Maven Central"
mkdir -p "$venv/share/hadoop"
quiet mvn -q -B -Dstyle.color=never -f "$root/deploy/local/hadoop-pom.xml" dependency:copy-dependencies \
  -DincludeScope=runtime -DoutputDirectory="$venv/share/hadoop/lib.new"
rm -rf "$venv/share/hadoop/lib" && mv "$venv/share/hadoop/lib.new" "$venv/share/hadoop/lib"

echo "$inputs_hash" > "$stamp"
log "done"
