//! The replication stream: `replication::decode` and the replica's `Applier`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ferrocache_fuzz::replication(data));
