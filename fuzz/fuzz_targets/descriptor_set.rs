//! Binary FileDescriptorSets as `schema add` and the registry cache load them: decode, check,
//! build the pool, then decode and re-encode payloads with every type it defines.
#![no_main]
use libfuzzer_sys::fuzz_target;
use prost::Message as _;

fuzz_target!(|data: &[u8]| {
    let Ok(set) = prost_types::FileDescriptorSet::decode(data) else {
        return;
    };
    if let Ok(schemas) = sluice_codec::SchemaSet::from_sets([set]) {
        sluice_fuzz::exercise_set(&schemas, data);
    }
});
