//! Recovery of a FILE store directory whose files hold arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    stan_broker::store::file::fuzz_recover(data);
});
