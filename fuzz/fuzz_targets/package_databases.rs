//! Fuzz target `package_databases`: the body lives in hoist::fuzzing::package_databases (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::package_databases(data));
