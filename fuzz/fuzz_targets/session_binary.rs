//! Binary protocol sessions (`ferrocache_fuzz::session_binary`: the input follows a 0x80).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocache_fuzz::session_binary(data));
