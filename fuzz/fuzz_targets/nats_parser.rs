//! The core-NATS client-protocol parser of `stan-embedded-nats`, fed in simulated socket reads.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stan_embedded_nats::fuzz_parse(data);
});
