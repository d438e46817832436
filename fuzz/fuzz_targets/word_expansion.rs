//! Fuzz target `word_expansion`: the body lives in hoist::fuzzing::word_expansion (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::word_expansion(data));
