//! Protobuf payloads decoded with a mapped type from the project's example and test schemas
//! (the first byte picks the type), re-encoded from the JSON, and run through type detection.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sluice_codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let set = sluice_fuzz::schemas();
    let types = set.message_types();
    let Some((&pick, payload)) = data.split_first() else {
        return;
    };
    let name = &types[pick as usize % types.len()];
    let codec = set.type_codec(name).expect("listed type");
    sluice_fuzz::decode_and_reencode(name, &Decoder::typed(codec), payload);
    let _ = sluice_codec::detect(set, &[payload]);
});
