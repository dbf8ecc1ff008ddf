#!/usr/bin/env bash
# Adjusts the Kotlin that uniffi-bindgen generated (run by the Maven build right after it):
# every native call gets its call status from a per-thread instance (callStatus.kt) instead of
# allocating a JNA Structure per call. A fresh Structure allocates JNA `Memory` twice, and
# JNA tracks every `Memory` in a global map until a GC collects it, so under a stream of calls
# each allocation costs tens of microseconds. Fails when the generated code no longer has the
# expected shape (a UniFFI upgrade), so the change is never silently lost.
#
#   kotlin/patch-bindings.sh path/to/stan_client_uniffi.kt
set -euo pipefail
file="$1"
before='private inline fun <U, E: kotlin.Exception> uniffiRustCallWithError(errorHandler: UniffiRustCallStatusErrorHandler<E>, callback: (UniffiRustCallStatus) -> U): U {
    var status = UniffiRustCallStatus()
    val return_value = callback(status)
    uniffiCheckCallStatus(errorHandler, status)
    return return_value
}'
after='private inline fun <U, E: kotlin.Exception> uniffiRustCallWithError(errorHandler: UniffiRustCallStatusErrorHandler<E>, callback: (UniffiRustCallStatus) -> U): U =
    withCallStatus { status ->
        val return_value = callback(status)
        uniffiCheckCallStatus(errorHandler, status)
        return_value
    }'
if grep -q 'withCallStatus { status ->' "$file"; then
    exit 0 # already adjusted
fi
BEFORE="$before" AFTER="$after" perl -0pi -e '
    my ($b, $a) = ($ENV{BEFORE}, $ENV{AFTER});
    my $n = () = /\Q$b\E/g;
    die "patch-bindings: expected uniffiRustCallWithError once in the generated Kotlin, found $n\n" if $n != 1;
    s/\Q$b\E/$a/;
' "$file"
