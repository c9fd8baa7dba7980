//! .proto text compiled at run time (protox), then every type it defines used to decode and
//! re-encode payloads.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(schemas) = sluice_codec::SchemaSet::from_proto_source("fuzz.proto", text) {
        sluice_fuzz::exercise_set(&schemas, data);
    }
});
