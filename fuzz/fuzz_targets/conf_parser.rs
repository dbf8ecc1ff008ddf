//! The NATS-syntax configuration parser of `stan-broker`, and the mapping of a parsed file onto
//! the broker's settings.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stan_broker::conf::fuzz_parse(data);
});
