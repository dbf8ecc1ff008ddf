#!/usr/bin/env bash
# CI for the Kotlin/JVM binding: the UniFFI crate (fmt, clippy, unit tests), the Maven project
# in its full test build (`-Ptest-hooks`: debug native library with the cargo feature
# `test-hooks`, Kotlin generation, -Werror compile, every JUnit 5 test against stan-broker), then
# the release build (`mvn install`: release native library, the tests of src/test/kotlin against
# it, installed into the local Maven repository; checked to be the release library without test
# hooks), then the examples/kotlin consumer project built and run against a broker with no Rust
# toolchain on its PATH, and the benchmark program (examples/kotlin/benchmark) built and run
# for a few messages per scenario and client.
#
#   kotlin/ci.sh            # from anywhere; exits non-zero on the first failure
#
# Environment: STAN_BROKER_BIN (default target/debug/stan-broker, built here),
# MAVEN_ARGS (extra Maven arguments, e.g. -o for offline).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
MVN=(mvn -B -ntp -Dstyle.color=never ${MAVEN_ARGS:-})
LOG_DIR="$ROOT/kotlin/target/ci"
mkdir -p "$LOG_DIR"

step() { printf '\n==> %s\n' "$*"; }

# Run Maven quietly but keep the Surefire summary ("Tests run: …"), warnings and errors.
mvn_filtered() {
    local log="$LOG_DIR/$1.log"
    shift
    if "${MVN[@]}" "$@" >"$log" 2>&1; then
        grep -E 'Tests run:|WARN|BUILD' "$log" | grep -v '^\[broker\]' || true
    else
        grep -E 'Tests run:|FAIL|ERROR|WARN|expected|Exception|BUILD' "$log" | grep -v '^\[broker\]' | head -200 || true
        echo "Maven failed; full log: $log" >&2
        return 1
    fi
}

step "every UniFFI export goes through runtime::export! (async_runtime = \"tokio\")"
if grep -rn 'uniffi::export' bindings/uniffi/src --include='*.rs' | grep -v '^bindings/uniffi/src/runtime.rs:'; then
    echo "use export! { … } from runtime.rs instead of #[uniffi::export]" >&2
    exit 1
fi

step "cargo fmt / clippy / unit tests of the UniFFI crate (release and test-hooks builds)"
cargo fmt --check -p stan-client-uniffi -p stan-uniffi-bindgen
cargo clippy --quiet -p stan-client-uniffi -p stan-uniffi-bindgen --all-targets -- -D warnings
cargo clippy --quiet -p stan-client-uniffi --all-targets --features test-hooks -- -D warnings
cargo test --quiet -p stan-client-uniffi
cargo test --quiet -p stan-client-uniffi --features test-hooks

step "broker for the tests"
if [[ -z "${STAN_BROKER_BIN:-}" ]]; then
    cargo build --quiet -p stan-broker --bin stan-broker
    export STAN_BROKER_BIN="$ROOT/target/debug/stan-broker"
fi

step "mvn verify -Ptest-hooks (debug library with test hooks, bindgen, -Werror compile, every JUnit 5 test)"
mvn_filtered verify -f kotlin/pom.xml -Ptest-hooks verify

step "mvn install (release library without test hooks, the tests of src/test/kotlin against it)"
mvn_filtered install -f kotlin/pom.xml install

step "the installed library exposes no test hooks"
VERSION="$(python3 scripts/version.py)"
# The main jar (the same folder may also hold the -sources and -javadoc jars of a dist build).
JAR="$HOME/.m2/repository/io/stanrs/stan-client/$VERSION/stan-client-$VERSION.jar"
HOOKS='error_kind_codes|error_for_code|errorKindCodes|errorForCode'
if unzip -p "$JAR" linux-x86-64/libstan_client_uniffi.so | strings | grep -E "$HOOKS" | head -n 3 | grep .; then
    echo "the native library in $JAR exports test hooks" >&2
    exit 1
fi
if grep -rlE "$HOOKS" kotlin/target/generated-sources/uniffi; then
    echo "the generated Kotlin of the release build declares test hooks" >&2
    exit 1
fi
echo "no test hooks in $JAR"
build_id() { readelf -n "$1" | sed -n 's/.*Build ID: //p'; }
PACKED="$LOG_DIR/packed-lib.so"
unzip -p "$JAR" linux-x86-64/libstan_client_uniffi.so >"$PACKED"
if [[ "$(build_id "$PACKED")" != "$(build_id target/release/libstan_client_uniffi.so)" ]]; then
    echo "the native library in $JAR is not target/release/libstan_client_uniffi.so" >&2
    exit 1
fi
echo "the jar carries the release library ($(du -k "$PACKED" | cut -f1) KiB)"

step "examples/kotlin: a consumer of io.stanrs:stan-client, run against a broker"
BROKER_PID=""
cleanup() { if [[ -n "$BROKER_PID" ]]; then kill "$BROKER_PID" 2>/dev/null || true; fi; }
trap cleanup EXIT
CLUSTER="kt-example-$$"
# Logs go to a file; standard output carries only the ready line,
# `STAN_BROKER_READY {"nats":["nats://…"],…}`, printed once the broker accepts clients.
exec 3< <(exec "$STAN_BROKER_BIN" -p 0 -a 127.0.0.1 -cid "$CLUSTER" 2>"$LOG_DIR/example-broker.log")
BROKER_PID=$!
URL=""
ready_re='^STAN_BROKER_READY .*"nats":\["([^"]+)"'
while IFS= read -r -t 20 -u 3 line; do
    if [[ "$line" =~ $ready_re ]]; then URL="${BASH_REMATCH[1]}"; break; fi
done
if [[ -z "$URL" ]]; then
    echo "the broker did not report its URL" >&2
    exit 1
fi
cat <&3 >/dev/null &
echo "broker $BROKER_PID at $URL"
# No cargo on the PATH: the jar must carry everything.
PATH="$(dirname "$(command -v java)"):$(dirname "$(command -v mvn)"):/usr/bin:/bin" \
    "${MVN[@]}" -q -f examples/kotlin/pom.xml compile exec:java -Dexec.args="$URL $CLUSTER"

step "examples/kotlin/benchmark: built, and each scenario of both clients run briefly (one JSON line each)"
"${MVN[@]}" -q -f examples/kotlin/benchmark/pom.xml package -DskipTests
for client in ours official; do
    for scenario in pub-pipelined pub-awaited consume-auto consume-manual; do
        line="$(java -jar examples/kotlin/benchmark/target/benchmark.jar --client "$client" \
            --scenario "$scenario" --messages 50 --size 128 --url "$URL" --cluster-id "$CLUSTER" \
            --channel "ci.bench.$client.$scenario" --warmup 20 | tail -n 1)"
        if ! python3 -c 'import json, sys; r = json.loads(sys.argv[1]); assert r["messages"] == 50 and r["msgs_per_sec"] > 0, r' "$line"; then
            echo "benchmark $client $scenario printed: $line" >&2
            exit 1
        fi
        echo "benchmark $client $scenario: $line"
    done
done

step "kotlin CI passed"
