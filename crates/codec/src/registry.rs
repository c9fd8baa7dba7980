//! Payloads framed for a Confluent-compatible Schema Registry: the schema is named by the
//! payload's first bytes (magic 0 and a 4-byte id) or by a `__value_schema_id` /
//! `__key_schema_id` header (magic 0 and an id, or magic 1 and a 16-byte GUID), and for
//! protobuf a message-index path says which message of the schema's file it is.
//!
//! Fetching schemas is someone else's job (the `sluice-registry` crate, behind
//! [`SchemaSource`]); this module turns what it hands over into decoders, once per schema.

use crate::avro::{AvroError, AvroSchema, AvroSchemaError};
use crate::guard::DecoderBug;
use crate::schemaless::{varint, zigzag};
use crate::validate::DescriptorProblem;
use crate::{Decoded, ProtobufCodec, ProtobufError};
use prost_reflect::{DescriptorPool, MessageDescriptor};
use sluice_model::Encoding;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How a payload names its schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaRef {
    Id(u32),
    Guid([u8; 16]),
}

impl std::fmt::Display for SchemaRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaRef::Id(id) => write!(f, "schema id {id}"),
            SchemaRef::Guid(g) => write!(f, "schema guid {}", uuid::Uuid::from_bytes(*g)),
        }
    }
}

/// Serialized as the registry spells it (`PROTOBUF`, `AVRO`, `JSON`) in the disk cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaKind {
    Protobuf,
    Avro,
    Json,
}

impl SchemaKind {
    /// The registry's `schemaType` (absent means Avro).
    pub fn parse(s: Option<&str>) -> Option<SchemaKind> {
        match s.map(str::to_ascii_uppercase).as_deref() {
            None | Some("AVRO") => Some(SchemaKind::Avro),
            Some("PROTOBUF") => Some(SchemaKind::Protobuf),
            Some("JSON") => Some(SchemaKind::Json),
            _ => None,
        }
    }
}

/// A schema as a registry holds it, with everything it references (transitively, dependencies
/// first), each under the name the schema uses for it (an import path for protobuf).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RegisteredSchema {
    pub kind: SchemaKind,
    pub schema: String,
    #[serde(default)]
    pub references: Vec<NamedSchema>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NamedSchema {
    pub name: String,
    pub schema: String,
}

/// Where schemas come from: a registry client with its disk cache.
pub trait SchemaSource: Send + Sync {
    fn schema(&self, r: SchemaRef) -> Result<RegisteredSchema, SourceError>;
}

/// Why a [`SchemaSource`] could not hand over a schema. The codec does not know the source's
/// own error type (the registry crate depends on this one), so it is kept whole behind an
/// `Arc`: cheap to clone into a cache of failures, and reads exactly as the source put it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// The source holds no schema by that reference (an in-memory source's answer; a registry
    /// says it in its own words, as a `Failed`).
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Failed(Arc<dyn std::error::Error + Send + Sync>),
}

impl SourceError {
    pub fn failed(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        SourceError::Failed(Arc::new(e))
    }
}

/// Two failures are the same when they say the same: the source's error type is not known here.
impl PartialEq for SourceError {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (SourceError::NotFound, SourceError::NotFound) => true,
            (SourceError::Failed(a), SourceError::Failed(b)) => {
                Arc::ptr_eq(a, b) || a.to_string() == b.to_string()
            }
            _ => false,
        }
    }
}

/// Why the schema a frame names cannot be used: not fetched, or not compiled. Remembered per
/// schema, so every payload naming it fails the same way without another fetch.
#[derive(Debug, thiserror::Error)]
pub enum UnusableSchema {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error("Avro schema: {0}")]
    Avro(#[source] AvroSchemaError),
    #[error("JSON Schema: {0}")]
    JsonSchema(#[source] serde_json::Error),
    #[error("protobuf schema: {0}")]
    Protobuf(#[source] protox::Error),
    #[error("protobuf schema: {0}")]
    Descriptor(#[source] DescriptorProblem),
    #[error("protobuf schema: {0}")]
    Pool(#[source] prost_reflect::DescriptorError),
    #[error(transparent)]
    Bug(#[from] DecoderBug),
}

/// Why a framed payload did not decode, or an edit of one did not encode, with its registry
/// schema. A decode's text is stored as the event's `decode_error`.
#[derive(Debug, thiserror::Error)]
pub enum FramedError {
    #[error("{schema}: {reason}")]
    Schema {
        schema: SchemaRef,
        #[source]
        reason: Arc<UnusableSchema>,
    },
    #[error("malformed message-index path")]
    MalformedPath,
    #[error("schema file missing from its pool")]
    FileMissing,
    #[error("message-index path {0:?} names no message of the schema")]
    NoSuchMessage(Vec<i64>),
    #[error("no message type")]
    NoMessageType,
    /// A payload framed for a JSON Schema that is not JSON.
    #[error("not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// An edit of such a payload that is not JSON.
    #[error(transparent)]
    EditNotJson(serde_json::Error),
    #[error(transparent)]
    Protobuf(#[from] ProtobufError),
    #[error(transparent)]
    Avro(#[from] AvroError),
}

/// The schema a payload's own first bytes name: magic byte 0 and a big-endian id, and the
/// rest of the payload.
pub fn payload_prefix(payload: &[u8]) -> Option<(SchemaRef, &[u8])> {
    match payload {
        [0, a, b, c, d, rest @ ..] => {
            Some((SchemaRef::Id(u32::from_be_bytes([*a, *b, *c, *d])), rest))
        }
        _ => None,
    }
}

/// The schema a `__value_schema_id`/`__key_schema_id` header names, and what follows it (a
/// protobuf message-index path).
pub fn header_ref(value: &[u8]) -> Option<(SchemaRef, &[u8])> {
    match value {
        [0, a, b, c, d, rest @ ..] => {
            Some((SchemaRef::Id(u32::from_be_bytes([*a, *b, *c, *d])), rest))
        }
        [1, rest @ ..] if rest.len() >= 16 => {
            let (g, rest) = rest.split_at(16);
            Some((SchemaRef::Guid(g.try_into().ok()?), rest))
        }
        _ => None,
    }
}

/// A protobuf message-index path and the bytes after it. A single 0 means `[0]`.
pub(crate) fn message_indexes(bytes: &[u8]) -> Option<(Vec<i64>, &[u8])> {
    let mut used = 0;
    let count = zigzag(varint(bytes, &mut used)?);
    // The path is as long as the nesting is deep; a large count means this is no frame.
    if !(0..=64).contains(&count) {
        return None;
    }
    let mut path = Vec::with_capacity(count as usize);
    for _ in 0..count {
        path.push(zigzag(varint(bytes, &mut used)?));
    }
    if path.is_empty() {
        path.push(0);
    }
    Some((path, &bytes[used..]))
}

/// What a schema compiles to.
enum Writer {
    Protobuf { pool: DescriptorPool, file: String },
    Avro(AvroSchema),
    Json { title: Option<String> },
}

/// A schema compiled once, or why it cannot be.
type Compiled = Result<Arc<Writer>, Arc<UnusableSchema>>;

/// Decodes framed payloads, compiling each schema the first time it is seen.
pub struct RegistryDecoder {
    source: Arc<dyn SchemaSource>,
    writers: Mutex<HashMap<SchemaRef, Compiled>>,
}

impl std::fmt::Debug for RegistryDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryDecoder").finish_non_exhaustive()
    }
}

/// Where a payload's schema reference was, and the message body once it is taken off.
struct Framing<'a> {
    schema: SchemaRef,
    /// Bytes after the id: the message-index path (protobuf) and, in the payload case, the body.
    after_id: &'a [u8],
    /// The body when the reference came from a header (the whole payload).
    header_body: Option<&'a [u8]>,
}

impl RegistryDecoder {
    pub fn new(source: Arc<dyn SchemaSource>) -> Self {
        RegistryDecoder {
            source,
            writers: Mutex::new(HashMap::new()),
        }
    }

    fn framing<'a>(payload: &'a [u8], header: Option<&'a [u8]>) -> Option<Framing<'a>> {
        if let Some((schema, after_id)) = header.and_then(header_ref) {
            return Some(Framing {
                schema,
                after_id,
                header_body: Some(payload),
            });
        }
        let (schema, after_id) = payload_prefix(payload)?;
        Some(Framing {
            schema,
            after_id,
            header_body: None,
        })
    }

    fn writer(&self, r: SchemaRef) -> Result<Arc<Writer>, FramedError> {
        let cached = self.writers.lock().ok().and_then(|m| m.get(&r).cloned());
        let w = match cached {
            Some(w) => w,
            None => {
                let w: Compiled = self
                    .source
                    .schema(r)
                    .map_err(UnusableSchema::from)
                    .and_then(|s| crate::guard::guarded(|| compile(&s))?)
                    .map(Arc::new)
                    .map_err(Arc::new);
                if let Ok(mut m) = self.writers.lock() {
                    m.insert(r, w.clone());
                }
                w
            }
        };
        w.map_err(|reason| FramedError::Schema { schema: r, reason })
    }

    /// Decodes a framed payload (`header` is the schema-id header's value, if any). `None`
    /// when the payload names no schema; an error when it does and decoding fails.
    pub fn decode(&self, payload: &[u8], header: Option<&[u8]>) -> Option<Decoded> {
        let f = Self::framing(payload, header)?;
        let out = self.writer(f.schema).and_then(|w| {
            let (desc, body) = body_of(&w, &f)?;
            decode_with(&w, desc, body)
        });
        Some(match out {
            Ok((encoding, schema, json)) => Decoded {
                encoding: Some(encoding),
                schema: Some(schema),
                json: Some(json),
                ..Decoded::default()
            },
            Err(e) => Decoded {
                encoding: Some(Encoding::Binary),
                error: Some(e.to_string()),
                ..Decoded::default()
            },
        })
    }

    /// Re-encodes edited JSON for a framed payload with the same schema and the same frame
    /// (id, message-index path; a header-framed payload stays bare). `None` when the payload
    /// names no schema.
    pub fn encode(
        &self,
        original: &[u8],
        header: Option<&[u8]>,
        json: &str,
    ) -> Option<Result<Vec<u8>, FramedError>> {
        let f = Self::framing(original, header)?;
        Some(self.writer(f.schema).and_then(|w| {
            let (desc, body) = body_of(&w, &f)?;
            let new_body = match (w.as_ref(), desc) {
                (Writer::Protobuf { .. }, Some(desc)) => {
                    ProtobufCodec::new(desc).encode_from_json(json)?
                }
                (Writer::Avro(schema), _) => schema.encode_from_json(json)?,
                _ => serde_json::from_str::<serde_json::Value>(json)
                    .map(|v| serde_json::to_vec(&v).unwrap_or_default())
                    .map_err(FramedError::EditNotJson)?,
            };
            let prefix = &original[..original.len() - body.len()];
            Ok([prefix, &new_body].concat())
        }))
    }
}

/// The protobuf message type the frame's path names (protobuf only), and the message body.
fn body_of<'a>(
    w: &Writer,
    f: &Framing<'a>,
) -> Result<(Option<MessageDescriptor>, &'a [u8]), FramedError> {
    match w {
        Writer::Protobuf { pool, file } => {
            let (path, rest) = message_indexes(f.after_id).ok_or(FramedError::MalformedPath)?;
            let desc = message_at(pool, file, &path)?;
            Ok((Some(desc), f.header_body.unwrap_or(rest)))
        }
        _ => Ok((None, f.header_body.unwrap_or(f.after_id))),
    }
}

fn message_at(
    pool: &DescriptorPool,
    file: &str,
    path: &[i64],
) -> Result<MessageDescriptor, FramedError> {
    let file = pool
        .get_file_by_name(file)
        .ok_or(FramedError::FileMissing)?;
    let bad = || FramedError::NoSuchMessage(path.to_vec());
    let mut it = path.iter().map(|&i| usize::try_from(i).map_err(|_| bad()));
    let mut desc = file
        .messages()
        .nth(it.next().ok_or_else(bad)??)
        .ok_or_else(bad)?;
    for i in it {
        let child = desc.child_messages().nth(i?);
        desc = child.ok_or_else(bad)?;
    }
    Ok(desc)
}

fn decode_with(
    w: &Writer,
    desc: Option<MessageDescriptor>,
    body: &[u8],
) -> Result<(Encoding, String, String), FramedError> {
    match (w, desc) {
        (Writer::Protobuf { .. }, Some(desc)) => {
            let codec = ProtobufCodec::new(desc);
            let json = codec.decode_to_json(body)?;
            Ok((Encoding::Protobuf, codec.type_name().to_string(), json))
        }
        (Writer::Avro(schema), _) => {
            let json = schema.decode_to_json(body)?;
            Ok((Encoding::Avro, schema.type_name().to_string(), json))
        }
        (Writer::Json { title }, _) => {
            let v: serde_json::Value =
                serde_json::from_slice(body).map_err(FramedError::NotJson)?;
            Ok((
                Encoding::Json,
                title.clone().unwrap_or_else(|| "json-schema".into()),
                v.to_string(),
            ))
        }
        (Writer::Protobuf { .. }, None) => Err(FramedError::NoMessageType),
    }
}

/// The main file's name when the registry gives no name for it.
const MAIN_FILE: &str = "sluice-registry-schema.proto";

fn compile(s: &RegisteredSchema) -> Result<Writer, UnusableSchema> {
    match s.kind {
        SchemaKind::Avro => {
            let refs: Vec<&str> = s.references.iter().map(|r| r.schema.as_str()).collect();
            AvroSchema::parse(&s.schema, &refs)
                .map(Writer::Avro)
                .map_err(UnusableSchema::Avro)
        }
        SchemaKind::Json => {
            let v: serde_json::Value =
                serde_json::from_str(&s.schema).map_err(UnusableSchema::JsonSchema)?;
            Ok(Writer::Json {
                title: v.get("title").and_then(|t| t.as_str()).map(str::to_string),
            })
        }
        SchemaKind::Protobuf => compile_protobuf(s),
    }
}

/// Registry protobuf schemas are .proto source (Java clients) or a base64 FileDescriptorProto
/// (Python's serializer registers those); references are files imported by name.
fn compile_protobuf(s: &RegisteredSchema) -> Result<Writer, UnusableSchema> {
    use prost::Message as _;
    use protox::file::{
        ChainFileResolver, DescriptorSetFileResolver, File, FileResolver, GoogleFileResolver,
    };

    fn descriptor(text: &str) -> Option<prost_types::FileDescriptorProto> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()?;
        prost_types::FileDescriptorProto::decode(bytes.as_slice()).ok()
    }

    struct Sources(HashMap<String, String>);
    impl FileResolver for Sources {
        fn open_file(&self, name: &str) -> Result<File, protox::Error> {
            match self.0.get(name) {
                Some(src) => File::from_source(name, src),
                None => Err(protox::Error::file_not_found(name)),
            }
        }
    }

    let mut sources = HashMap::new();
    let mut descriptors = Vec::new();
    let mut add = |name: &str, text: &str| -> String {
        match descriptor(text) {
            Some(mut d) => {
                let n = d
                    .name
                    .clone()
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| name.to_string());
                d.name = Some(n.clone());
                descriptors.push(d);
                n
            }
            None => {
                sources.insert(name.to_string(), text.to_string());
                name.to_string()
            }
        }
    };
    for r in &s.references {
        add(&r.name, &r.schema);
    }
    let main = add(MAIN_FILE, &s.schema);
    let mut chain = ChainFileResolver::new();
    chain.add(Sources(sources));
    chain.add(DescriptorSetFileResolver::new(
        prost_types::FileDescriptorSet { file: descriptors },
    ));
    chain.add(GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(chain);
    compiler.include_imports(true);
    compiler
        .open_file(&main)
        .map_err(UnusableSchema::Protobuf)?;
    // A registered base64 descriptor is as untrusted as a dropped file: checked like one.
    let set = compiler.file_descriptor_set();
    crate::validate::check_files(&set.file).map_err(UnusableSchema::Descriptor)?;
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_set(set)
        .map_err(UnusableSchema::Pool)?;
    Ok(Writer::Protobuf { pool, file: main })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(HashMap<u32, RegisteredSchema>);
    impl SchemaSource for Fixed {
        fn schema(&self, r: SchemaRef) -> Result<RegisteredSchema, SourceError> {
            match r {
                SchemaRef::Id(id) => self.0.get(&id).cloned().ok_or(SourceError::NotFound),
                SchemaRef::Guid(_) => Err(SourceError::NotFound),
            }
        }
    }

    fn registry() -> RegistryDecoder {
        let mut m = HashMap::new();
        m.insert(
            1,
            RegisteredSchema {
                kind: SchemaKind::Protobuf,
                schema: "syntax = \"proto3\"; package p; import \"common.proto\"; message A { string x = 1; } message B { message C { common.Money m = 1; } }".into(),
                references: vec![NamedSchema {
                    name: "common.proto".into(),
                    schema: "syntax = \"proto3\"; package common; message Money { int64 cents = 1; }".into(),
                }],
            },
        );
        m.insert(
            2,
            RegisteredSchema {
                kind: SchemaKind::Avro,
                schema: r#"{"type":"record","name":"R","fields":[{"name":"n","type":"long"}]}"#
                    .into(),
                references: vec![],
            },
        );
        m.insert(
            3,
            RegisteredSchema {
                kind: SchemaKind::Json,
                schema: r#"{"title":"Thing","type":"object"}"#.into(),
                references: vec![],
            },
        );
        RegistryDecoder::new(Arc::new(Fixed(m)))
    }

    #[test]
    fn decodes_every_kind_and_keeps_the_frame_on_edit() {
        let r = registry();
        // id 1, path [1, 0] (B.C): count 2 -> 4, 1 -> 2, 0 -> 0; then C{m{cents: 5}}
        let p = [0, 0, 0, 0, 1, 4, 2, 0, 0x0a, 0x02, 0x08, 0x05];
        let d = r.decode(&p, None).unwrap();
        assert_eq!(
            (d.schema.as_deref(), d.json.as_deref()),
            (Some("p.B.C"), Some(r#"{"m":{"cents":"5"}}"#))
        );
        let edited = r
            .encode(&p, None, r#"{"m":{"cents":"6"}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(&edited[..8], &p[..8], "id and path kept");
        assert_eq!(
            r.decode(&edited, None).unwrap().json.as_deref(),
            Some(r#"{"m":{"cents":"6"}}"#)
        );
        // The [0] shortcut.
        let d = r
            .decode(&[0, 0, 0, 0, 1, 0, 0x0a, 0x01, b'q'], None)
            .unwrap();
        assert_eq!(d.json.as_deref(), Some(r#"{"x":"q"}"#));
        // Avro, and JSON Schema.
        let d = r.decode(&[0, 0, 0, 0, 2, 0x54], None).unwrap();
        assert_eq!(
            (d.encoding, d.json.as_deref()),
            (Some(Encoding::Avro), Some(r#"{"n":42}"#))
        );
        let d = r.decode(b"\0\0\0\0\x03{\"a\": 1}", None).unwrap();
        assert_eq!(
            (d.schema.as_deref(), d.json.as_deref()),
            (Some("Thing"), Some(r#"{"a":1}"#))
        );
        // In a header, the payload is the bare body.
        let d = r.decode(&[0x54], Some(&[0, 0, 0, 0, 2])).unwrap();
        assert_eq!(d.json.as_deref(), Some(r#"{"n":42}"#));
        assert_eq!(
            r.encode(&[0x54], Some(&[0, 0, 0, 0, 2]), r#"{"n":1}"#)
                .unwrap()
                .unwrap(),
            vec![0x02]
        );
    }

    #[test]
    fn bad_frames_are_errors_on_the_event() {
        let r = registry();
        assert!(r.decode(b"plain", None).is_none());
        let e = r.decode(&[0, 0, 0, 0, 9, 1], None).unwrap().error.unwrap();
        assert!(e.contains("schema id 9: not found"), "{e}");
        let e = r
            .decode(&[0, 0, 0, 0, 1, 2, 14], None)
            .unwrap()
            .error
            .unwrap();
        assert!(e.contains("names no message"), "{e}");
        let e = r
            .decode(&[0, 0, 0, 0, 2, 0x54, 0], None)
            .unwrap()
            .error
            .unwrap();
        assert!(e.contains("bytes left"), "{e}");
        for len in 0..64 {
            let mut junk = vec![0u8, 0, 0, 0, (len % 4) as u8];
            junk.extend((0..len).map(|i| (i * 37 % 256) as u8));
            let _ = r.decode(&junk, None);
            let _ = r.decode(&junk[5..], Some(&junk));
        }
    }
}
