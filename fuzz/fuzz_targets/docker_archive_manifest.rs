//! Fuzz target `docker_archive_manifest`: the body lives in hoist::fuzzing::docker_archive_manifest (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::docker_archive_manifest(data));
