//! `uniffi-bindgen`, built from the workspace's own `uniffi` so the generated Kotlin always
//! matches the scaffolding in `stan-client-uniffi`.
//!
//! ```text
//! target/debug/uniffi-bindgen generate --library target/debug/libstan_client_uniffi.so \
//!     --language kotlin --config bindings/uniffi/uniffi.toml --out-dir kotlin/target/generated-sources/uniffi
//! ```

fn main() {
    uniffi::uniffi_bindgen_main()
}
