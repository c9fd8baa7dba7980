//! Avro schema text (an .avsc file or a registry answer): parse, then decode and re-encode
//! payloads with it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluice_codec::{AvroSchema, Decoder, TypeCodec};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = sluice_codec::parse_avro(&[("fuzz.avsc".to_string(), text.to_string())]);
    for e in &parsed.errors {
        sluice_fuzz::no_bug("parse_avro", Some(&e.message));
    }
    let Ok(schema) = AvroSchema::parse(text, &[]) else {
        return;
    };
    let decoder = Decoder::typed(TypeCodec::Avro(Arc::new(schema)));
    for p in sluice_fuzz::PROBES.iter().copied().chain([data]) {
        sluice_fuzz::decode_and_reencode("avro", &decoder, p);
    }
});
