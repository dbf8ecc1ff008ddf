#!/usr/bin/env bash
# The cross-language suite in one command: build what it needs, start stan-broker once, play
# every scenario of integration/scenarios.toml in Rust, Python, Node and Kotlin, print the
# matrix and end with `N passed, M failed` on the last line. Exit status 0 only when all pass.
#
#   integration/run.sh                         build, then everything
#   integration/run.sh --languages rust,python  a subset (missing languages are not counted)
#   integration/run.sh --only queue-group,cross-pair
#   SKIP_BUILD=1 integration/run.sh            use what is already built / installed
#
# Builds (each is a no-op when up to date):
#   rust    cargo build -p stan-broker; cargo build -p stan-integration-runner
#   python  venv target/integration/venv + `pip install ./python` (as a user installs it)
#   kotlin  `mvn install` of kotlin/ (io.stanrs:stan-client as released, without test hooks; its
#           tests need `-Ptest-hooks` and kotlin/ci.sh runs them), then integration/runner-kotlin,
#           a plain Maven consumer of that jar
#   node    node/: `npm ci --ignore-scripts` (first time) + `npm run build` (the debug addon with
#           test hooks, as node/ci.sh tests it); the runner finds
#           the package through integration/runner-node/node_modules/stan-client -> node/
# A language whose build fails is still run: its scenarios fail, and the summary says so.
# Build logs go to target/integration/build-*.log.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TERM_COLOR=never
LOGS="$ROOT/target/integration"
mkdir -p "$LOGS"
PYTHON=${PYTHON:-python3}

if ! "$PYTHON" -c 'import sys, tomllib; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "integration/run.sh needs Python >= 3.11 as \$PYTHON (tomllib)" >&2
  exit 2
fi

build() {
  local name=$1; shift
  local log="$LOGS/build-$name.log"
  local start=$SECONDS
  if "$@" >"$log" 2>&1; then
    echo "build $name: ok ($((SECONDS - start))s)"
  else
    echo "build $name: FAILED ($((SECONDS - start))s), see $log; its scenarios will fail"
    tail -n 20 "$log" | sed 's/^/    /'
  fi
}

build_rust() {
  cargo build -p stan-broker --bin stan-broker && cargo build -p stan-integration-runner
}

build_python() {
  local venv="$LOGS/venv"
  if [ ! -x "$venv/bin/python" ]; then "$PYTHON" -m venv "$venv"; fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check ./python
}

build_kotlin() {
  local mvn=(mvn -B -ntp -Dstyle.color=never ${MAVEN_ARGS:-})
  "${mvn[@]}" -f kotlin/pom.xml install &&
    "${mvn[@]}" -f integration/runner-kotlin/pom.xml compile
}

build_node() {
  (cd node && { [ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund; } && npm run build) &&
    mkdir -p integration/runner-node/node_modules &&
    ln -sfn ../../../node integration/runner-node/node_modules/stan-client
}

if [ "${SKIP_BUILD:-}" != 1 ]; then
  build rust build_rust
  if [ ! -x target/debug/stan-broker ]; then
    echo "no stan-broker binary: nothing can run"
    echo "0 passed, 1 failed"
    exit 1
  fi
  build python build_python
  build kotlin build_kotlin
  build node build_node
fi

export STAN_BROKER_BIN="${STAN_BROKER_BIN:-$ROOT/target/debug/stan-broker}"
rm -rf "$LOGS/run"
exec "$PYTHON" integration/run.py --log-dir "$LOGS/run" "$@"
