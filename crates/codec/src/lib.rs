//! Turns payload bytes into something a person can read and search: protobuf messages (from
//! .proto files compiled at run time or from descriptor sets) as canonical proto3 JSON, JSON
//! payloads as JSON, UTF-8 as text, unmapped protobuf as a field-number tree, MessagePack and
//! CBOR as JSON, gzip/zstd/snappy/base64 layers taken off first, and anything else as bytes.
//!
//! This crate owns schemas and decoding. It must not read from buses, write the lake, or know
//! where schemas are stored on disk beyond the paths it is handed: the API crate persists them.
//! Decoding never panics and never fails a capture: a bad payload yields a `decode_error`, and
//! every decode runs behind a panic guard, so a bug in a dependency fails one event with
//! "decoder bug: ..." instead of the process. Descriptor sets are checked for what prost-reflect
//! takes on trust (well-formed map entries) before they reach a pool; folder walks are bounded
//! (no symlink loops, capped depth and size).

mod avro;
mod cbor;
mod detect;
mod error;
mod framing;
mod guard;
mod json;
mod msgpack;
mod protobuf;
mod registry;
mod schema;
mod schemaless;
mod validate;
mod wrapping;

pub use avro::{AvroError, AvroSchema, AvroSchemaError, ReadError, WriteError};
pub use detect::{detect, Candidate};
pub use error::{DecodeError, EncodeError};
pub use framing::{protobuf_frame, Frame};
pub use guard::DecoderBug;
pub use protobuf::{ProtobufCause, ProtobufCodec, ProtobufError, TranscodeError};
pub use registry::{
    header_ref, payload_prefix, FramedError, NamedSchema, RegisteredSchema, RegistryDecoder,
    SchemaKind, SchemaRef, SchemaSource, SourceError, UnusableSchema,
};
pub use schema::{
    collect_files, compile_paths, dedup_errors, parse_avro, Compiled, ParsedAvro, SchemaError,
    SchemaSet, DESCRIPTOR_SET_EXTENSIONS, MAX_FOLDER_DEPTH, MAX_FOLDER_ENTRIES, MAX_FOLDER_FILES,
};
pub use schemaless::{decode_raw, decode_raw_json};
pub use validate::{check_files, DescriptorProblem, MapEntryProblem};
pub use wrapping::{unwrap, wrap};

use sluice_model::Encoding;
use std::sync::Arc;

/// What decoding one payload (or key) produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Decoded {
    pub encoding: Option<Encoding>,
    pub schema: Option<String>,
    /// JSON text (protobuf or JSON payloads).
    pub json: Option<String>,
    /// Text for valid UTF-8 that is not JSON.
    pub text: Option<String>,
    pub error: Option<String>,
}

/// A mapped type: a protobuf message or an Avro record.
#[derive(Debug, Clone)]
pub enum TypeCodec {
    Protobuf(ProtobufCodec),
    Avro(Arc<AvroSchema>),
}

impl TypeCodec {
    pub fn type_name(&self) -> &str {
        match self {
            TypeCodec::Protobuf(c) => c.type_name(),
            TypeCodec::Avro(s) => s.type_name(),
        }
    }

    pub fn encoding(&self) -> Encoding {
        match self {
            TypeCodec::Protobuf(_) => Encoding::Protobuf,
            TypeCodec::Avro(_) => Encoding::Avro,
        }
    }

    /// Decodes one payload; a panic in either decoder is this payload's error.
    pub fn decode_to_json(&self, bytes: &[u8]) -> Result<String, DecodeError> {
        Ok(match self {
            TypeCodec::Protobuf(c) => c.decode_to_json(bytes)?,
            TypeCodec::Avro(s) => guard::guarded(|| s.decode_to_json(bytes))??,
        })
    }

    pub fn encode_from_json(&self, json: &str) -> Result<Vec<u8>, EncodeError> {
        Ok(match self {
            TypeCodec::Protobuf(c) => c.encode_from_json(json)?,
            TypeCodec::Avro(s) => guard::guarded(|| s.encode_from_json(json))??,
        })
    }

    /// Decodes with the type; a payload in Confluent Schema Registry framing is decoded from
    /// its message body. Neither plain protobuf (field number 0 does not exist) nor most Avro
    /// starts with byte 0, so only a failed decode of a payload starting with 0 is tried as a
    /// frame. Returns the JSON and the length of the frame prefix.
    fn decode_maybe_framed(&self, bytes: &[u8]) -> Result<(String, usize), DecodeError> {
        match self.decode_to_json(bytes) {
            Err(e) if bytes.first() == Some(&0) => {
                let body = match self {
                    TypeCodec::Protobuf(_) => protobuf_frame(bytes).map(|f| f.body),
                    TypeCodec::Avro(_) => payload_prefix(bytes).map(|(_, body)| body),
                };
                body.and_then(|b| Some((self.decode_to_json(b).ok()?, bytes.len() - b.len())))
                    .ok_or(e)
            }
            other => other.map(|j| (j, 0)),
        }
    }
}

/// How a topic's keys or values decode: a mapped type, a schema registry for framed payloads,
/// and sniffing for the rest.
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    codec: Option<TypeCodec>,
    registry: Option<Arc<RegistryDecoder>>,
}

impl Decoder {
    pub fn sniffing() -> Self {
        Decoder::default()
    }

    pub fn protobuf(codec: ProtobufCodec) -> Self {
        Self::typed(TypeCodec::Protobuf(codec))
    }

    pub fn typed(codec: TypeCodec) -> Self {
        Decoder {
            codec: Some(codec),
            registry: None,
        }
    }

    /// Framed payloads are decoded with the schema the registry holds for them first.
    pub fn with_registry(mut self, registry: Option<Arc<RegistryDecoder>>) -> Self {
        self.registry = registry;
        self
    }

    pub fn registry(&self) -> Option<&RegistryDecoder> {
        self.registry.as_deref()
    }

    /// Decodes a payload. `complete` is false when the payload was cut at the size cap, in which
    /// case a mapped type is not attempted (it would fail on the cut) and that is said plainly.
    pub fn decode(&self, bytes: &[u8], complete: bool) -> Decoded {
        self.decode_with_header(bytes, complete, None)
    }

    /// As `decode`, with the value of the payload's schema-id header (`__value_schema_id` or
    /// `__key_schema_id`) when it has one.
    pub fn decode_with_header(
        &self,
        bytes: &[u8],
        complete: bool,
        header: Option<&[u8]>,
    ) -> Decoded {
        // The last fence: whatever a dependency does with this payload, the capture goes on.
        guard::guarded(|| self.decode_unguarded(bytes, complete, header)).unwrap_or_else(|bug| {
            Decoded {
                encoding: Some(Encoding::Binary),
                schema: self.codec.as_ref().map(|c| c.type_name().to_string()),
                error: Some(bug.to_string()),
                ..Decoded::default()
            }
        })
    }

    fn decode_unguarded(&self, bytes: &[u8], complete: bool, header: Option<&[u8]>) -> Decoded {
        let framed = header.is_some() || payload_prefix(bytes).is_some();
        if !complete && (self.codec.is_some() || (framed && self.registry.is_some())) {
            return Decoded {
                encoding: Some(Encoding::Binary),
                schema: self.codec.as_ref().map(|c| c.type_name().to_string()),
                error: Some("payload exceeds the size cap and was truncated; not decoded".into()),
                ..Decoded::default()
            };
        }
        let mut registry_error = None;
        if let Some(d) = self.registry.as_ref().and_then(|r| r.decode(bytes, header)) {
            if d.error.is_none() {
                return d;
            }
            registry_error = d.error;
        }
        let Some(codec) = &self.codec else {
            let mut d = sniff(bytes);
            if let Some(e) = registry_error {
                d.error = Some(e);
            } else if d.encoding == Some(Encoding::Binary) && self.registry.is_none() {
                if let Some((r, _)) = payload_prefix(bytes) {
                    d.error = Some(format!(
                        "looks like Schema Registry framing ({r}), but the connection has no registry (add one with `sluice connection add ... --registry URL`)"
                    ));
                }
            }
            return d;
        };
        match codec.decode_maybe_framed(bytes) {
            Ok((json, _)) => Decoded {
                encoding: Some(codec.encoding()),
                schema: Some(codec.type_name().to_string()),
                json: Some(json),
                ..Decoded::default()
            },
            // A compressed or base64 message of the mapped type.
            Err(e) => match unwrap(bytes)
                .and_then(|(layer, inner)| Some((layer, codec.decode_maybe_framed(&inner).ok()?.0)))
            {
                Some((layer, json)) => Decoded {
                    encoding: Some(layer),
                    schema: Some(codec.type_name().to_string()),
                    json: Some(json),
                    ..Decoded::default()
                },
                None => {
                    // Still show what we can: the failure is recorded, the raw bytes kept.
                    let mut d = sniff(bytes);
                    d.schema = Some(codec.type_name().to_string());
                    d.error = Some(registry_error.unwrap_or_else(|| e.to_string()));
                    d
                }
            },
        }
    }

    /// The bytes for `original` edited to `json`: framed payloads keep their frame (schema id,
    /// message-index path) and schema; others are encoded with the mapped type.
    pub fn encode(
        &self,
        original: &[u8],
        header: Option<&[u8]>,
        json: &str,
    ) -> Result<Vec<u8>, EncodeError> {
        guard::guarded(|| self.encode_unguarded(original, header, json))?
    }

    fn encode_unguarded(
        &self,
        original: &[u8],
        header: Option<&[u8]>,
        json: &str,
    ) -> Result<Vec<u8>, EncodeError> {
        if let Some(r) = self
            .registry
            .as_ref()
            .and_then(|r| r.encode(original, header, json))
        {
            // A framed payload the mapped type decodes instead (an unknown id) falls through.
            match (&r, &self.codec) {
                (Err(_), Some(c)) if c.decode_maybe_framed(original).is_ok() => {}
                _ => return Ok(r?),
            }
        }
        let codec = self.codec.as_ref().ok_or(EncodeError::NoSchema)?;
        let body = codec.encode_from_json(json)?;
        let prefix = codec
            .decode_maybe_framed(original)
            .map(|(_, p)| p)
            .unwrap_or(0);
        Ok([&original[..prefix], &body].concat())
    }
}

/// Unmapped payloads: JSON if it parses, text if printable UTF-8 (unless it is base64 of
/// something decodable), then layers taken off, MessagePack or CBOR maps and arrays,
/// protobuf wire format as a field-number tree, and bytes when nothing fits.
pub fn sniff(bytes: &[u8]) -> Decoded {
    sniff_within(bytes, 0)
}

/// Layers inside layers (base64 of gzip, say) are taken off up to this depth.
const MAX_LAYERS: usize = 2;

fn sniff_within(bytes: &[u8], depth: usize) -> Decoded {
    if let Some(json) = json::parse_object_or_array(bytes) {
        return found(Encoding::Json, json);
    }
    let text = printable(bytes);
    if depth < MAX_LAYERS {
        if let Some((layer, inner)) = unwrap(bytes) {
            let d = sniff_within(&inner, depth + 1);
            // Base64 is also plain words by accident: only take it when it held structure.
            let structured = d.json.is_some();
            if structured {
                return Decoded {
                    encoding: Some(layer),
                    text: text.map(str::to_string),
                    ..d
                };
            }
            // Compressed text: the text is what it decodes to (as a JSON string), since the
            // payload's own bytes are not text.
            if let (true, Some(inner)) = (layer != Encoding::Base64, d.text) {
                return Decoded {
                    encoding: Some(layer),
                    json: serde_json::to_string(&inner).ok(),
                    ..Decoded::default()
                };
            }
        }
    }
    if let Some(text) = text {
        return Decoded {
            encoding: Some(Encoding::Text),
            text: Some(text.to_string()),
            ..Decoded::default()
        };
    }
    if let Some(json) = msgpack::decode(bytes) {
        return found(Encoding::MsgPack, json);
    }
    if let Some(json) = cbor::decode(bytes) {
        return found(Encoding::Cbor, json);
    }
    if let Some(tree) = decode_raw_json(bytes) {
        return found(Encoding::ProtobufRaw, tree);
    }
    Decoded {
        encoding: Some(Encoding::Binary),
        ..Decoded::default()
    }
}

fn found(encoding: Encoding, json: String) -> Decoded {
    Decoded {
        encoding: Some(encoding),
        json: Some(json),
        ..Decoded::default()
    }
}

/// Binary formats such as protobuf are often valid UTF-8 (field tags are control bytes), so
/// text must also be free of control characters other than whitespace.
pub(crate) fn printable(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok().filter(|t| {
        !t.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_json_text_and_bytes() {
        let d = sniff(br#"{"a": 1, "b": [true]}"#);
        assert_eq!(d.encoding, Some(Encoding::Json));
        assert_eq!(d.json.as_deref(), Some(r#"{"a":1,"b":[true]}"#));
        let d = sniff(b"hello world");
        assert_eq!(d.encoding, Some(Encoding::Text));
        assert_eq!(d.text.as_deref(), Some("hello world"));
        let d = sniff(&[0xff, 0x00, 0x12]);
        assert_eq!(d.encoding, Some(Encoding::Binary));
        let d = sniff(b"\x0a\x05hello\x10\x02"); // protobuf that happens to be UTF-8
        assert_eq!(d.encoding, Some(Encoding::ProtobufRaw));
        assert_eq!(d.json.as_deref(), Some(r##"{"#1":"hello","#2":2}"##));
        assert!(d.text.is_none());
        assert_eq!(sniff(b"two\nlines\tok").encoding, Some(Encoding::Text));
        assert_eq!(
            sniff(b"Sluice12").encoding,
            Some(Encoding::Text),
            "base64 of nothing"
        );
        let d = sniff(b"eyJzdGF0dXMiOiJPSyJ9"); // base64 of {"status":"OK"}
        assert_eq!(d.encoding, Some(Encoding::Base64));
        assert_eq!(d.json.as_deref(), Some(r#"{"status":"OK"}"#));
        let d = sniff(b"\x82\xa1a\x01\xa1b\x92\xc3\xa1x");
        assert_eq!(
            (d.encoding, d.json.as_deref()),
            (Some(Encoding::MsgPack), Some(r#"{"a":1,"b":[true,"x"]}"#))
        );
        let d = sniff(b"\xa2\x61a\x01\x61b\x82\xf5\x61x");
        assert_eq!(
            (d.encoding, d.json.as_deref()),
            (Some(Encoding::Cbor), Some(r#"{"a":1,"b":[true,"x"]}"#))
        );
    }

    #[test]
    fn confluent_framed_protobuf_decodes_with_the_mapped_type() {
        let set = SchemaSet::from_proto_source(
            "f.proto",
            "syntax = \"proto3\"; message M { string a = 1; }",
        )
        .unwrap();
        let d = Decoder::protobuf(set.codec("M").unwrap());
        let plain = d.decode(b"\x0a\x02hi", true);
        assert_eq!(plain.json.as_deref(), Some(r#"{"a":"hi"}"#));
        let framed = d.decode(b"\x00\x00\x00\x00\x2a\x00\x0a\x02hi", true);
        assert_eq!(framed.json.as_deref(), Some(r#"{"a":"hi"}"#));
        assert!(framed.error.is_none());
        let broken = d.decode(b"\x00\x00\x00\x00\x2a\x00\x0a\x09hi", true);
        assert!(
            broken.json.is_none() && broken.error.is_some(),
            "a bad body stays an error"
        );
    }

    #[test]
    fn compressed_payloads_decode_with_and_without_a_type() {
        use std::io::Write;
        let set = SchemaSet::from_proto_source(
            "z.proto",
            "syntax = \"proto3\"; message M { string a = 1; }",
        )
        .unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"\x0a\x02hi").unwrap();
        let gz = gz.finish().unwrap();
        let d = Decoder::protobuf(set.codec("M").unwrap()).decode(&gz, true);
        assert_eq!(
            (d.encoding, d.json.as_deref()),
            (Some(Encoding::Gzip), Some(r#"{"a":"hi"}"#))
        );
        assert!(d.error.is_none());
        let d = sniff(&gz);
        assert_eq!(
            (d.encoding, d.json.as_deref()),
            (Some(Encoding::Gzip), Some(r##"{"#1":"hi"}"##))
        );
        let z = zstd::encode_all(&b"plain words"[..], 1).unwrap();
        let d = sniff(&z);
        assert_eq!(
            (d.encoding, d.json.as_deref()),
            (Some(Encoding::Zstd), Some("\"plain words\""))
        );
        let z = zstd::encode_all(&br#"{"ok":true}"#[..], 1).unwrap();
        assert_eq!(sniff(&z).json.as_deref(), Some(r#"{"ok":true}"#));
    }

    #[test]
    fn truncated_payloads_are_not_decoded_with_a_type() {
        let set = SchemaSet::from_proto_source(
            "t.proto",
            "syntax = \"proto3\"; message M { string a = 1; }",
        )
        .unwrap();
        let d = Decoder::protobuf(set.codec("M").unwrap()).decode(b"\x0a\x05hel", false);
        assert!(d.error.unwrap().contains("truncated"));
        assert!(d.json.is_none());
    }
}
