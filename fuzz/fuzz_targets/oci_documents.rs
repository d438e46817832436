//! Fuzz target `oci_documents`: the body lives in hoist::fuzzing::oci_documents (shared with the stable seed test).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| hoist::fuzzing::oci_documents(data));
