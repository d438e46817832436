//! Fuzz target `www_authenticate`: the body lives in hoist::fuzzing::www_authenticate (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::www_authenticate(data));
