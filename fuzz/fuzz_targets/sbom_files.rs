//! Fuzz target `sbom_files`: the body lives in hoist::fuzzing::sbom_files (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::sbom_files(data));
