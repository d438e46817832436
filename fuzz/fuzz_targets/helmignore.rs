//! Fuzz target `helmignore`: the body lives in hoist::fuzzing::helmignore (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::helmignore(data));
