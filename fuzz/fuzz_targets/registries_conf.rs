//! Fuzz target `registries_conf`: the body lives in hoist::fuzzing::registries_conf (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::registries_conf(data));
