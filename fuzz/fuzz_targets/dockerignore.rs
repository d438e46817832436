//! Fuzz target `dockerignore`: the body lives in hoist::fuzzing::dockerignore (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::dockerignore(data));
