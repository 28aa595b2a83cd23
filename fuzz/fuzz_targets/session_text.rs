//! Text and meta protocol sessions (`ferrocache_fuzz::session_text`).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocache_fuzz::session_text(data));
