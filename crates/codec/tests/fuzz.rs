//! Mutation fuzzing of the frame parsers (payload prefix, schema-id headers), the schemaless
//! decoder, the Avro decoder and the sniffer: valid seeds
//! are flipped, cut, spliced and grown at random, and every result must come back without a
//! panic. `cargo fuzz` needs a nightly toolchain, which these machines do not have, so this is
//! a seeded loop instead: 100k inputs in the normal suite; set SLUICE_FUZZ_ITERATIONS for more
//! (`SLUICE_FUZZ_ITERATIONS=5000000 cargo test --release -p sluice-codec --test fuzz`).

mod common;
use common::{mutate, Rng};

use sluice_codec::{decode_raw, header_ref, protobuf_frame, sniff, unwrap, AvroSchema};

const AVRO: &str = r#"{"type":"record","name":"N","fields":[
  {"name":"s","type":"string"},{"name":"l","type":"long"},{"name":"d","type":"double"},
  {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"]}},
  {"name":"a","type":{"type":"array","items":"N"}},
  {"name":"m","type":{"type":"map","values":["null","bytes"]}},
  {"name":"f","type":{"type":"fixed","name":"F","size":3}},
  {"name":"next","type":["null","N"]}]}"#;

fn seeds() -> Vec<Vec<u8>> {
    vec![
        b"\x0a\x03abc\x10\x96\x01\x1a\x05\x0a\x01x\x10\x01\x25\x07\x00\x00\x00".to_vec(),
        b"\x00\x00\x00\x00\x2a\x02\x02\x0a\x02hi\x10\x07".to_vec(),
        b"\x00\x00\x00\x01\x00\x00\x0a\x00".to_vec(),
        b"\x82\xa1a\x01\xa1b\x92\xc3\xa1x".to_vec(),
        b"\xa2\x61a\x01\x61b\x82\xf5\x61x".to_vec(),
        b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\x56\x4a\xd4\x51\x32\x54\xaa\x05\x00"
            .to_vec(),
        b"eyJhIjogMX0=".to_vec(),
        b"{\"a\": [1, {\"b\": null}]}".to_vec(),
        vec![0x0a; 40],
    ]
}

#[test]
fn mutated_inputs_never_panic() {
    let n: u64 = std::env::var("SLUICE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let avro = AvroSchema::parse(AVRO, &[]).unwrap();
    let leaf = r#"{"s":"x","l":7,"d":1.5,"e":"B","a":[],"m":{"k":{"bytes":"\u0001"}},"f":"abc","next":null}"#;
    let nested = format!(
        r#"{{"s":"y","l":-3,"d":0,"e":"A","a":[{leaf},{leaf}],"m":{{}},"f":"xyz","next":{{"N":{leaf}}}}}"#
    );
    let mut seeds = seeds();
    seeds.push(avro.encode_from_json(leaf).unwrap());
    seeds.push(avro.encode_from_json(&nested).unwrap());
    let mut rng = Rng(0x5eed_1ce5);
    let mut parsed = [0u64; 4];
    for i in 0..n {
        let input = mutate(&mut rng, &seeds);
        let r = std::panic::catch_unwind(|| {
            (
                protobuf_frame(&input).is_some(),
                decode_raw(&input).is_some(),
                unwrap(&input).is_some(),
                sniff(&input),
                avro.decode_to_json(&input).is_ok() | header_ref(&input).is_some(),
            )
        });
        let (f, d, _, s, a) =
            r.unwrap_or_else(|_| panic!("iteration {i} panicked on {input:02x?}"));
        parsed[0] += f as u64;
        parsed[1] += d as u64;
        parsed[2] += s.json.is_some() as u64;
        parsed[3] += a as u64;
    }
    // The mutations must still reach the interesting paths, or the loop tests nothing.
    assert!(parsed.iter().all(|&p| p > n / 50), "{parsed:?} of {n}");
}
