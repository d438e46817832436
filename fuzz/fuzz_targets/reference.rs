//! Fuzz target `reference`: the body lives in hoist::fuzzing::reference (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::reference(data));
