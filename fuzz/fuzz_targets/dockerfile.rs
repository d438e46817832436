//! Fuzz target `dockerfile`: the body lives in hoist::fuzzing::dockerfile_parse (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::dockerfile_parse(data));
