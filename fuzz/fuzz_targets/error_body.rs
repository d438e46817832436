//! Fuzz target `error_body`: the body lives in hoist::fuzzing::error_body (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::error_body(data));
