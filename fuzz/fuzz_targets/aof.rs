//! The append-only log: record decoding (`journal.rs`) and replay (`aof.rs`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocache_fuzz::aof(data));
