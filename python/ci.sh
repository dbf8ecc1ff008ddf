#!/usr/bin/env bash
# CI for the Python package: fresh venv, real user install (`pip install ./python`, a release
# build through the maturin backend) checked to expose no test hooks, then the test build (the
# same install with the binding's cargo feature `test-hooks`), lint, types, stub check,
# examples, tests.
#
#   python/ci.sh                    # everything
#   STAN_BROKER_BIN=/path/stan-broker python/ci.sh
#   KEEP_VENV=1 python/ci.sh        # keep the venv (its path is printed)
#
# Needs: python3 (>= 3.10) with venv, cargo, network access to PyPI and crates.io.
# The last line printed is pytest's summary line; the exit status is non-zero on any failure.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PYTHON=${PYTHON:-python3}

step() { printf '\n==> %s\n' "$*"; }

VENV=$(mktemp -d /tmp/stan-client-py-ci.XXXXXX)
cleanup() {
  if [ "${KEEP_VENV:-}" = 1 ]; then echo "venv kept at $VENV"; else rm -rf "$VENV"; fi
}
trap cleanup EXIT

step "broker binary"
if [ -z "${STAN_BROKER_BIN:-}" ]; then
  if [ ! -x "$ROOT/target/debug/stan-broker" ]; then
    (cd "$ROOT" && cargo build -p stan-broker)
  fi
  export STAN_BROKER_BIN="$ROOT/target/debug/stan-broker"
fi
echo "$STAN_BROKER_BIN"

step "rust: fmt + clippy of the binding crate (release and test-hooks builds)"
(cd "$ROOT" && cargo fmt -p stan-client-python -- --check)
(cd "$ROOT" && cargo clippy -p stan-client-python --all-targets -- -D warnings)
(cd "$ROOT" && cargo clippy -p stan-client-python --all-targets --features test-hooks -- -D warnings)

step "fresh venv in $VENV"
"$PYTHON" -m venv "$VENV"
# shellcheck disable=SC1091
. "$VENV/bin/activate"
python -m pip install --quiet --upgrade pip

step "pip install ./python (release build, as a user installs it)"
(cd "$ROOT" && python -m pip install ./python)

step "the release build exposes no test hooks"
(cd "$VENV" && python - <<'EOF'
import stan_client.sync
import stan_client._native as native
from stan_client.errors import InvalidArgumentError

hooks = ["_error_kind_codes", "_error_for_code", "_panic_blocking", "_panic_async"]
present = [name for name in hooks if hasattr(native, name)]
assert not present, f"release build exposes test hooks: {present}"
try:
    stan_client.sync.connect("c", "me", ping_interval_millis_for_tests=50)
except InvalidArgumentError as e:
    assert "test-hooks" in str(e), e
else:
    raise AssertionError("ping_interval_millis_for_tests was accepted by a release build")
print("release build: no test hooks, ping_interval_millis_for_tests rejected")
EOF
)

step "pip install ./python with the test hooks (the build the tests run against)"
(cd "$ROOT" && python -m pip install --force-reinstall --no-deps ./python \
  --config-settings=build-args="--features test-hooks")
(cd "$VENV" && python -c 'import stan_client._native as n; assert hasattr(n, "_panic_blocking")')

step "test and lint tools"
python -m pip install --quiet pytest pytest-asyncio pytest-timeout mypy ruff

cd "$HERE"
# The source folder also holds a `stan_client` package (without the compiled module unless
# `maturin develop` put one there); checks that import the package run from elsewhere so they
# see the installed one.
NEUTRAL=$(mktemp -d "$VENV/cwd.XXXXXX")

step "ruff"
ruff check .
ruff format --check .
ruff check --config pyproject.toml ../examples/python
ruff format --config pyproject.toml --check ../examples/python

step "mypy --strict (package, tests, bench, examples)"
mypy --strict stan_client tests bench
mypy --strict --config-file pyproject.toml ../examples/python

step "ruff + mypy --strict: the cross-language suite's Python code (integration/)"
ruff check ../integration
ruff format --check ../integration
(cd ../integration && mypy --strict --python-version 3.11 --cache-dir "$VENV/mypy-integration" \
  run.py harness scenarios runner-python/runner.py)

step "stubtest: _native.pyi against the compiled module"
(cd "$NEUTRAL" && python -m mypy.stubtest stan_client._native)

step "examples against a broker"
(cd "$NEUTRAL" && python - "$ROOT/examples/python" <<'EOF'
import os
import subprocess
import sys
from pathlib import Path

from stan_client.testing import run_broker

failed = []
with run_broker() as broker:
    env = dict(os.environ, STAN_URL=broker.url, STAN_CLUSTER=broker.cluster_id)
    for example in sorted(Path(sys.argv[1]).glob("*.py")):
        try:
            r = subprocess.run([sys.executable, str(example)], env=env, timeout=120)
            code = r.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        print(f"example {example.name}: {'ok' if code == 0 else f'FAILED ({code})'}", flush=True)
        if code != 0:
            failed.append(example.name)
sys.exit(1 if failed else 0)
EOF
)

step "pytest"
exec pytest -p no:cacheprovider tests
