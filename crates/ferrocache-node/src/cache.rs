use napi_derive::napi;

/// Placeholder until the engine bindings land.
#[napi]
pub fn engine_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
