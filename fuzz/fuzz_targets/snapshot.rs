//! Snapshot files: the decoder (`snapshot/format.rs`) and the loader (`snapshot/loader.rs`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocache_fuzz::snapshot(data));
