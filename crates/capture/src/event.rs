//! One message into one lake row: the payload cut at the size cap, value and key decoded with
//! the source's decoders. `tail` builds owned events with it, capture borrows rows from it.

use sluice_codec::{Decoded, Decoder};
use sluice_lake::EventRef;
use sluice_model::{event_id, Bus, Encoding, Event, Message};
use sluice_replay::REPLAY_ID_HEADER;
use std::collections::HashMap;

/// Per-topic decoders for values and keys.
#[derive(Clone, Default)]
pub struct TopicDecoders {
    pub value: Decoder,
    pub key: Option<Decoder>,
}

/// The headers a Schema Registry serializer puts a schema id in, instead of the payload.
pub const VALUE_SCHEMA_HEADER: &str = "__value_schema_id";
const KEY_SCHEMA_HEADER: &str = "__key_schema_id";

impl TopicDecoders {
    /// The payload's decoding (`complete` is false for a payload cut at the size cap) and the
    /// key's JSON when keys are mapped or framed for a registry. Capture and re-decoding both
    /// go through here.
    pub fn decode(
        &self,
        payload: &[u8],
        complete: bool,
        key: Option<&[u8]>,
        headers: &[(&str, &[u8])],
    ) -> (Decoded, Option<String>) {
        let header = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
        let key_header = header(KEY_SCHEMA_HEADER);
        // Keys framed for the connection's registry decode even when no key type is mapped.
        let key_decoded = match (&self.key, self.value.registry(), key) {
            (Some(kd), _, Some(k)) => kd.decode_with_header(k, true, key_header).json,
            (None, Some(r), Some(k)) => r.decode(k, key_header).and_then(|d| d.json),
            _ => None,
        };
        (
            self.value
                .decode_with_header(payload, complete, header(VALUE_SCHEMA_HEADER)),
            key_decoded,
        )
    }
}

/// Turns one connection's messages into events, with a decoder per source (sniffing for a
/// source without one).
/// Messages one worker decodes at least, when a batch is spread over cores: handing work to
/// another thread costs microseconds, the decoding of a few small messages.
pub const PARALLEL_MIN: usize = 256;

pub struct EventBuilder {
    pub connection: String,
    pub bus: Bus,
    pub decoders: HashMap<String, TopicDecoders>,
    pub max_payload_bytes: usize,
    pub decode: bool,
    /// Capture-time redaction: applied to each message as it is decoded, so what it removes
    /// is never written.
    pub redact: Option<std::sync::Arc<crate::Redactions>>,
}

/// What decoding one message produced, kept beside the message so a row can borrow both.
pub struct Parts {
    decoded: Decoded,
    key_decoded: Option<String>,
    size: usize,
    truncated: bool,
}

impl Parts {
    pub fn failed(&self) -> bool {
        self.decoded.error.is_some()
    }

    /// The payload was longer than the size cap and is stored cut.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl EventBuilder {
    /// Cuts the payload at the size cap and decodes value and key.
    pub fn decode(&self, msg: &mut Message) -> Parts {
        let size = msg.payload.len();
        let truncated = size > self.max_payload_bytes;
        if truncated {
            msg.payload.truncate(self.max_payload_bytes);
        }
        if !self.decode {
            return Parts {
                decoded: Decoded {
                    encoding: Some(Encoding::Undecoded),
                    ..Decoded::default()
                },
                key_decoded: None,
                size,
                truncated,
            };
        }
        let fallback = TopicDecoders::default();
        let d = self.decoders.get(&msg.source).unwrap_or(&fallback);
        let headers: Vec<(&str, &[u8])> = msg
            .headers
            .iter()
            .filter_map(|h| Some((h.key.as_str(), h.value.as_deref()?)))
            .collect();
        let (mut decoded, mut key_decoded) =
            d.decode(&msg.payload, !truncated, msg.key.as_deref(), &headers);
        let redactor = self
            .redact
            .as_ref()
            .and_then(|r| r.for_source(&self.connection, &msg.source));
        if let Some(r) = redactor {
            r.message(msg, &mut decoded, &mut key_decoded, &d.value, truncated);
        }
        Parts {
            decoded,
            key_decoded,
            size,
            truncated,
        }
    }

    /// Decodes every message, on all cores when there are enough of them (rayon's pool);
    /// the parts come back in the messages' order, as decoding them one at a time gives them.
    pub fn decode_all(&self, msgs: &mut [Message]) -> Vec<Parts> {
        if !self.decode || msgs.len() < 2 * PARALLEL_MIN {
            return msgs.iter_mut().map(|m| self.decode(m)).collect();
        }
        use rayon::prelude::*;
        msgs.par_iter_mut()
            .with_min_len(PARALLEL_MIN)
            .map(|m| self.decode(m))
            .collect()
    }

    /// The row for a decoded message, borrowing from both (capture appends it to the lake
    /// without building an `Event`). `captured_at_us` is read once per polled batch: a clock
    /// read per message showed up in profiles.
    pub fn row<'a>(
        &'a self,
        msg: &'a Message,
        parts: &'a Parts,
        captured_at_us: i64,
    ) -> EventRef<'a> {
        EventRef {
            id: msg.id.as_deref(),
            bus: self.bus,
            connection: &self.connection,
            source: &msg.source,
            partition: msg.partition,
            offset: msg.offset,
            sub_offset: msg.sub_offset,
            key: msg.key.as_deref(),
            key_decoded: parts.key_decoded.as_deref(),
            headers: &msg.headers,
            timestamp_us: msg.timestamp_us,
            captured_at_us,
            payload: &msg.payload,
            size: parts.size as i64,
            truncated: parts.truncated,
            schema: parts.decoded.schema.as_deref(),
            encoding: parts.decoded.encoding.unwrap_or(Encoding::Binary),
            decoded: parts.decoded.json.as_deref(),
            payload_text: parts.decoded.text.as_deref(),
            decode_error: parts.decoded.error.as_deref(),
            properties: msg.properties.as_deref(),
        }
    }

    /// The id of a message: its own, or the one its bus position gives.
    pub fn id_of(&self, msg: &Message) -> String {
        msg.id.clone().unwrap_or_else(|| {
            event_id(
                self.bus,
                &self.connection,
                &msg.source,
                msg.partition,
                msg.offset,
                msg.sub_offset,
            )
        })
    }

    /// An owned event, for `tail`.
    pub fn build(&self, mut msg: Message, captured_at_us: i64) -> Event {
        let parts = self.decode(&mut msg);
        let id = msg.id.take().unwrap_or_else(|| self.id_of(&msg));
        Event {
            id,
            bus: self.bus,
            connection: self.connection.clone(),
            source: msg.source,
            partition: msg.partition,
            offset: msg.offset,
            sub_offset: msg.sub_offset,
            key: msg.key,
            key_decoded: parts.key_decoded,
            headers: msg.headers,
            timestamp_us: msg.timestamp_us,
            captured_at_us,
            payload: msg.payload,
            size: parts.size as i64,
            truncated: parts.truncated,
            schema: parts.decoded.schema,
            encoding: parts.decoded.encoding.unwrap_or(Encoding::Binary),
            decoded: parts.decoded.json,
            payload_text: parts.decoded.text,
            decode_error: parts.decoded.error,
            properties: msg.properties,
        }
    }
}

/// Whether `msg` is one this lake replayed (its `sluice-replay-id` names the lake), which a
/// capture skips unless asked to keep replays.
pub fn is_own_replay(msg: &Message, lake_id: &str) -> bool {
    msg.headers.iter().any(|h| {
        h.key == REPLAY_ID_HEADER
            && h.value.as_deref().is_some_and(|v| {
                v.starts_with(lake_id.as_bytes()) && v.get(lake_id.len()) == Some(&b':')
            })
    })
}

/// A message of source `orders` at partition 0, offset 7, for this crate's tests.
#[cfg(test)]
pub(crate) fn test_message(headers: Vec<sluice_model::Header>, payload: &[u8]) -> Message {
    Message {
        id: None,
        source: "orders".into(),
        partition: Some(0),
        offset: Some(7),
        sub_offset: None,
        key: None,
        headers,
        timestamp_us: None,
        payload: payload.to_vec(),
        properties: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::Header;

    fn message(headers: Vec<Header>, payload: &[u8]) -> Message {
        test_message(headers, payload)
    }

    fn replay_id(value: &str) -> Vec<Header> {
        vec![Header {
            key: REPLAY_ID_HEADER.into(),
            value: Some(value.as_bytes().to_vec()),
        }]
    }

    /// The threaded path must answer exactly as decoding one message at a time does, in the
    /// same order: JSON, text, bytes, cut payloads and a mapped protobuf type that fails.
    #[test]
    fn decoding_on_all_cores_matches_one_at_a_time() {
        let set = sluice_codec::SchemaSet::from_proto_source(
            "p.proto",
            r#"syntax = "proto3"; message P { string id = 1; int64 n = 2; }"#,
        )
        .unwrap();
        let typed = TopicDecoders {
            value: sluice_codec::Decoder::typed(set.type_codec("P").unwrap()),
            key: None,
        };
        let b = EventBuilder {
            connection: "c".into(),
            bus: sluice_model::Bus::Kafka,
            decoders: [("typed".to_string(), typed)].into(),
            max_payload_bytes: 40,
            decode: true,
            redact: None,
        };
        let mut msgs: Vec<Message> = (0..20 * PARALLEL_MIN + 17)
            .map(|i| {
                let payload = match i % 5 {
                    0 => format!("{{\"n\":{i}}}").into_bytes(),
                    1 => format!("plain text {i}").into_bytes(),
                    2 => vec![0xff, 0xfe, i as u8],
                    3 => vec![b'x'; 41 + i % 7],
                    _ => vec![0x0a, 0x02, b'o', b'k', 0x10, (i % 100) as u8, 0xff],
                };
                let mut m = message(Vec::new(), &payload);
                m.source = if i % 2 == 0 { "typed" } else { "orders" }.into();
                m.offset = Some(i as i64);
                m
            })
            .collect();
        let mut one_by_one = msgs.clone();
        let parallel = b.decode_all(&mut msgs);
        let sequential: Vec<Parts> = one_by_one.iter_mut().map(|m| b.decode(m)).collect();
        assert_eq!(msgs, one_by_one, "payloads cut the same way");
        assert_eq!(parallel.len(), sequential.len());
        for (i, (p, s)) in parallel.iter().zip(&sequential).enumerate() {
            assert_eq!(
                (&p.decoded, &p.key_decoded, p.size, p.truncated),
                (&s.decoded, &s.key_decoded, s.size, s.truncated),
                "message {i}"
            );
        }
        assert!(parallel.iter().any(|p| p.failed()) && parallel.iter().any(|p| p.truncated));
    }

    #[test]
    fn only_this_lakes_replays_are_its_own() {
        assert!(is_own_replay(&message(replay_id("abc:r1"), b""), "abc"));
        assert!(!is_own_replay(&message(replay_id("abcd:r1"), b""), "abc"));
        assert!(!is_own_replay(&message(replay_id("abc"), b""), "abc"));
        assert!(!is_own_replay(&message(replay_id("xyz:r1"), b""), "abc"));
        assert!(!is_own_replay(&message(Vec::new(), b""), "abc"));
    }

    fn builder(decode: bool) -> EventBuilder {
        EventBuilder {
            connection: "local".into(),
            bus: Bus::Kafka,
            decoders: HashMap::new(),
            max_payload_bytes: 4,
            decode,
            redact: None,
        }
    }

    #[test]
    fn a_payload_past_the_cap_is_stored_cut_and_flagged() {
        let e = builder(true).build(message(Vec::new(), b"{\"a\":1}"), 5);
        assert_eq!(e.payload, b"{\"a\"");
        assert_eq!((e.size, e.truncated, e.captured_at_us), (7, true, 5));
        assert_eq!(
            e.id,
            event_id(Bus::Kafka, "local", "orders", Some(0), Some(7), None)
        );
    }

    #[test]
    fn without_decoding_the_payload_is_kept_undecoded() {
        let mut msg = message(Vec::new(), b"{}");
        let parts = builder(false).decode(&mut msg);
        assert!(!parts.failed() && !parts.truncated());
        let b = builder(false);
        let row = b.row(&msg, &parts, 0);
        assert_eq!(row.encoding, Encoding::Undecoded);
        assert!(row.decoded.is_none());
    }
}
