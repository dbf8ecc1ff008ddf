//! Arbitrary payloads on every `_STAN.*` request route of a running engine: the protobuf
//! decoding and the validation done before acting.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stan_broker::engine::fuzz_requests(data);
});
