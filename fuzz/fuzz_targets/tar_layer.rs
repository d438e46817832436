//! Fuzz target `tar_layer`: the body lives in hoist::fuzzing::tar_layer (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::tar_layer(data));
