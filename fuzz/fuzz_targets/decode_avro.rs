//! Avro payloads decoded with a fixed record using every Avro type (recursive, unions, logical
//! types), bare and in Schema Registry framing, and re-encoded from the JSON.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluice_codec::{AvroSchema, Decoder, TypeCodec};
use std::sync::{Arc, OnceLock};

fn decoder() -> &'static Decoder {
    static D: OnceLock<Decoder> = OnceLock::new();
    D.get_or_init(|| {
        let schema = AvroSchema::parse(sluice_fuzz::AVRO_RECORD, &[]).expect("fixed schema");
        Decoder::typed(TypeCodec::Avro(Arc::new(schema)))
    })
}

fuzz_target!(|data: &[u8]| {
    sluice_fuzz::decode_and_reencode("avro", decoder(), data);
    let framed = [&[0, 0, 0, 0, 1][..], data].concat();
    sluice_fuzz::decode_and_reencode("avro framed", decoder(), &framed);
});
