//! Unmapped payloads: the sniffer (JSON, text, gzip/zstd/snappy/base64 layers, MessagePack,
//! CBOR, schemaless protobuf), Schema Registry framing and a registry-backed decoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluice_codec::{Decoder, RegistryDecoder};
use sluice_model::Encoding;
use std::sync::{Arc, OnceLock};

fn registry() -> Arc<RegistryDecoder> {
    static R: OnceLock<Arc<RegistryDecoder>> = OnceLock::new();
    R.get_or_init(|| {
        Arc::new(RegistryDecoder::new(Arc::new(sluice_fuzz::Registry {
            extra: None,
        })))
    })
    .clone()
}

fuzz_target!(|data: &[u8]| {
    sluice_fuzz::check_decoded("sniff", &sluice_codec::sniff(data));
    let sniffing = Decoder::sniffing();
    sluice_fuzz::check_decoded("sniffing", &sniffing.decode(data, true));
    sluice_fuzz::check_decoded("sniffing cut", &sniffing.decode(data, false));
    if let Some(json) = sluice_codec::decode_raw_json(data) {
        assert!(
            serde_json::from_str::<serde_json::Value>(&json).is_ok(),
            "{json}"
        );
    }
    let _ = sluice_codec::decode_raw(data);
    let _ = sluice_codec::protobuf_frame(data);
    let _ = sluice_codec::payload_prefix(data);
    let _ = sluice_codec::header_ref(data);
    let _ = sluice_codec::unwrap(data);
    for layer in [Encoding::Gzip, Encoding::Zstd] {
        let wrapped = sluice_codec::wrap(layer, data).expect("gzip and zstd always wrap");
        assert_eq!(
            sluice_codec::unwrap(&wrapped),
            Some((layer, data.to_vec())),
            "{layer:?} round trip"
        );
    }
    for layer in [Encoding::Snappy, Encoding::Base64] {
        let _ = sluice_codec::wrap(layer, data).map(|w| sluice_codec::unwrap(&w));
    }
    // Registry framing: the first byte picks a registered schema id, the rest is the body.
    if let Some((&id, body)) = data.split_first() {
        let framed = [&[0, 0, 0, 0, id % 6][..], body].concat();
        let decoder = Decoder::sniffing().with_registry(Some(registry()));
        sluice_fuzz::decode_and_reencode("registry", &decoder, &framed);
        let header = [0, 0, 0, 0, id % 6];
        let d = decoder.decode_with_header(body, true, Some(&header));
        sluice_fuzz::check_decoded("registry header", &d);
    }
});
