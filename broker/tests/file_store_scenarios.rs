//! The broker's scenario tests run again on the FILE store: `tests/common` sees that it is
//! included from here and starts every broker with `StoreKind::File` on a fresh directory.
//! (Any scenario binary can also be switched with `STAN_TEST_STORE=file`.)
// Each scenario file brings its own copy of `tests/common`, on purpose.
#![allow(clippy::duplicate_mod)]

#[path = "bad_input.rs"]
mod bad_input;
#[path = "durable_queue.rs"]
mod durable_queue;
#[path = "protocol.rs"]
mod protocol;
#[path = "timing.rs"]
mod timing;

mod common;

#[tokio::test]
async fn scenarios_really_run_on_the_file_store() {
    let b = common::start_broker(|_| {}).await;
    assert_eq!(b.snapshot().await.store_type, "FILE");
    match &b.config().store {
        stan_broker::config::StoreKind::File(dir) => assert!(dir.join(".lock").exists()),
        other => panic!("not the file store: {other:?}"),
    }
    b.shutdown().await;
}
