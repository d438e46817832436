//! Fuzz target `chart_archive`: the body lives in hoist::fuzzing::chart_archive (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::chart_archive(data));
