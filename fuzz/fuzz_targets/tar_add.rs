//! Fuzz target `tar_add`: the body lives in hoist::fuzzing::tar_add (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::tar_add(data));
