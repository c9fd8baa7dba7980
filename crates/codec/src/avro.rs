//! Avro: binary datums to and from the Avro JSON encoding, guided by the writer's schema (an
//! .avsc file, or a schema fetched from a registry with the named types it references).
//!
//! The JSON is the one the Avro specification defines (and `kafka-avro-console-consumer`,
//! `avro-tools tojson` and fastavro's `json_writer` print): records as objects, enums as their
//! symbol, `bytes` and `fixed` as strings whose code points 0-255 are the bytes, a union value
//! as `null` or a one-key object naming its branch (`{"string": "x"}`, `{"shop.Address": {..}}`),
//! and logical types as their underlying type (a `timestamp-millis` is its `long`). Because the
//! JSON never needs a logical value, the schema is kept as a small tree of underlying types
//! rather than a general Avro object model.
//!
//! Decoding never panics: every read is bounded by the input, nesting is capped, and a datum
//! must use every byte (a wrong schema rarely does). This file parses schemas; `decode` reads
//! datums and `encode` writes them.

mod decode;
mod encode;

pub use decode::ReadError;
pub use encode::WriteError;

use serde_json::{Map, Value};
use std::collections::HashMap;

/// A problem with an Avro schema, its JSON located by line and column when that is where it is.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", position.map(|(l, c)| format!("{l}:{c}: ")).unwrap_or_default())]
pub struct AvroSchemaError {
    pub position: Option<(usize, usize)>,
    pub message: String,
}

fn schema_error(message: impl Into<String>) -> AvroSchemaError {
    AvroSchemaError {
        position: None,
        message: message.into(),
    }
}

/// A datum that does not decode with the schema, or JSON that does not encode with it.
#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    #[error("not a {type_name} Avro datum: {reason}")]
    Decode {
        type_name: String,
        #[source]
        reason: ReadError,
    },
    #[error("does not fit {type_name}: {reason}")]
    Encode {
        type_name: String,
        #[source]
        reason: WriteError,
    },
}

#[derive(Debug, Clone)]
enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Fixed(usize),
    Enum(Vec<String>),
    Array(usize),
    Map(usize),
    Union(Vec<usize>),
    Record(Vec<Field>),
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    node: usize,
    default: Option<Value>,
}

/// A parsed writer schema: the node tree plus, per node, the name a union uses for it.
#[derive(Debug, Clone)]
pub struct AvroSchema {
    nodes: Vec<Node>,
    labels: Vec<String>,
    root: usize,
    /// Named types (records, enums, fixed) by full name.
    named: HashMap<String, usize>,
}

const PRIMITIVES: [&str; 8] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// Deep enough for any real schema; stops a recursive type on a hostile payload.
const MAX_DEPTH: usize = 128;

impl AvroSchema {
    /// Parses `schema` after `references` (schemas whose named types it uses, dependencies
    /// first), as a registry hands them over.
    pub fn parse(schema: &str, references: &[&str]) -> Result<Self, AvroSchemaError> {
        let mut s = AvroSchema {
            nodes: Vec::new(),
            labels: Vec::new(),
            root: 0,
            named: HashMap::new(),
        };
        for r in references {
            let v = json(r)?;
            s.node(&v, None)?;
        }
        let v = json(schema)?;
        s.root = s.node(&v, None)?;
        Ok(s)
    }

    /// The full name of the root type (`shop.Order`), or its primitive name.
    pub fn type_name(&self) -> &str {
        &self.labels[self.root]
    }

    /// The named record types this schema defines: what `schema list` shows and `schema map`
    /// accepts.
    pub fn record_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .named
            .iter()
            .filter(|(_, &i)| matches!(self.nodes[i], Node::Record(_)))
            .map(|(n, _)| n.clone())
            .collect();
        names.sort();
        names
    }

    /// The same schema read from one of its named types (to map a topic to a record nested
    /// in a file that defines several).
    pub fn rooted_at(&self, name: &str) -> Option<AvroSchema> {
        let root = *self.named.get(name)?;
        Some(AvroSchema {
            root,
            ..self.clone()
        })
    }

    fn push(&mut self, node: Node, label: String) -> usize {
        self.nodes.push(node);
        self.labels.push(label);
        self.nodes.len() - 1
    }

    fn node(&mut self, v: &Value, ns: Option<&str>) -> Result<usize, AvroSchemaError> {
        match v {
            Value::String(name) => self.named_or_primitive(name, ns),
            Value::Array(branches) => {
                let mut ids = Vec::with_capacity(branches.len());
                for b in branches {
                    let id = self.node(b, ns)?;
                    if matches!(self.nodes[id], Node::Union(_)) {
                        return Err(schema_error("a union cannot hold another union directly"));
                    }
                    if ids.iter().any(|&i| self.labels[i] == self.labels[id]) {
                        return Err(schema_error(format!(
                            "union holds {} twice",
                            self.labels[id]
                        )));
                    }
                    ids.push(id);
                }
                Ok(self.push(Node::Union(ids), "union".into()))
            }
            Value::Object(o) => {
                let kind = o
                    .get("type")
                    .ok_or_else(|| schema_error(format!("a schema object needs \"type\": {v}")))?;
                match kind.as_str() {
                    Some("record") | Some("error") => self.record(o, ns),
                    Some("enum") => {
                        let symbols = o
                            .get("symbols")
                            .and_then(Value::as_array)
                            .ok_or_else(|| schema_error("an enum needs \"symbols\""))?
                            .iter()
                            .map(|s| {
                                s.as_str()
                                    .map(str::to_string)
                                    .ok_or_else(|| schema_error("enum symbols must be strings"))
                            })
                            .collect::<Result<Vec<_>, _>>()?;
                        let (name, _) = full_name(o, ns)?;
                        if let Some(twice) = first_repeat(symbols.iter().map(String::as_str)) {
                            return Err(schema_error(format!(
                                "enum {name} has the symbol {twice:?} twice (symbols must be unique)"
                            )));
                        }
                        let id = self.push(Node::Enum(symbols), name.clone());
                        self.define(name, id)
                    }
                    Some("fixed") => {
                        let size = o
                            .get("size")
                            .and_then(Value::as_u64)
                            .ok_or_else(|| schema_error("a fixed type needs a \"size\""))?;
                        let (name, _) = full_name(o, ns)?;
                        let id = self.push(Node::Fixed(size as usize), name.clone());
                        self.define(name, id)
                    }
                    Some("array") => {
                        let items = o
                            .get("items")
                            .ok_or_else(|| schema_error("an array needs \"items\""))?;
                        let items = self.node(items, ns)?;
                        Ok(self.push(Node::Array(items), "array".into()))
                    }
                    Some("map") => {
                        let values = o
                            .get("values")
                            .ok_or_else(|| schema_error("a map needs \"values\""))?;
                        let values = self.node(values, ns)?;
                        Ok(self.push(Node::Map(values), "map".into()))
                    }
                    // A primitive or named type with attributes (a logical type, say): its
                    // underlying type is what the JSON encoding uses.
                    _ => self.node(kind, ns),
                }
            }
            other => Err(schema_error(format!("not an Avro schema: {other}"))),
        }
    }

    fn named_or_primitive(
        &mut self,
        name: &str,
        ns: Option<&str>,
    ) -> Result<usize, AvroSchemaError> {
        let node = match name {
            "null" => Node::Null,
            "boolean" => Node::Boolean,
            "int" => Node::Int,
            "long" => Node::Long,
            "float" => Node::Float,
            "double" => Node::Double,
            "bytes" => Node::Bytes,
            "string" => Node::String,
            _ => {
                let qualified = match ns {
                    Some(ns) if !name.contains('.') && !ns.is_empty() => format!("{ns}.{name}"),
                    _ => name.to_string(),
                };
                return self
                    .named
                    .get(&qualified)
                    .or_else(|| self.named.get(name))
                    .copied()
                    .ok_or_else(|| {
                        schema_error(format!(
                            "unknown type {name:?} (a named type must be defined before it is used)"
                        ))
                    });
            }
        };
        Ok(self.push(node, name.to_string()))
    }

    fn define(&mut self, name: String, id: usize) -> Result<usize, AvroSchemaError> {
        if self.named.insert(name.clone(), id).is_some() {
            return Err(schema_error(format!("type {name} is defined twice")));
        }
        Ok(id)
    }

    fn record(
        &mut self,
        o: &Map<String, Value>,
        ns: Option<&str>,
    ) -> Result<usize, AvroSchemaError> {
        let (name, own_ns) = full_name(o, ns)?;
        // Defined before its fields are read, so a record can refer to itself.
        let id = self.push(Node::Record(Vec::new()), name.clone());
        self.define(name.clone(), id)?;
        let fields = o
            .get("fields")
            .and_then(Value::as_array)
            .ok_or_else(|| schema_error(format!("record {name} needs \"fields\"")))?;
        let mut out = Vec::with_capacity(fields.len());
        for f in fields {
            let fname = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| schema_error(format!("a field of {name} has no \"name\"")))?;
            let ftype = f
                .get("type")
                .ok_or_else(|| schema_error(format!("field {name}.{fname} has no \"type\"")))?;
            let node = self
                .node(ftype, own_ns.as_deref())
                .map_err(|e| schema_error(format!("field {name}.{fname}: {}", e.message)))?;
            out.push(Field {
                name: fname.to_string(),
                node,
                default: f.get("default").cloned(),
            });
        }
        // Found by fuzzing: with a name twice, a decoded event's JSON holds the key twice and
        // does not encode back, so it could not be replayed unedited.
        if let Some(twice) = first_repeat(out.iter().map(|f| f.name.as_str())) {
            return Err(schema_error(format!(
                "record {name} has the field {twice:?} twice (field names must be unique)"
            )));
        }
        self.nodes[id] = Node::Record(out);
        Ok(id)
    }
}

fn json(text: &str) -> Result<Value, AvroSchemaError> {
    serde_json::from_str(text).map_err(|e| AvroSchemaError {
        position: Some((e.line(), e.column())),
        message: e
            .to_string()
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_string(),
    })
}

/// The first name that appears again, if any.
fn first_repeat<'a>(names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut seen = std::collections::HashSet::new();
    names.into_iter().find(|n| !seen.insert(*n))
}

/// A named type's full name and the namespace its fields resolve names in.
fn full_name(
    o: &Map<String, Value>,
    ns: Option<&str>,
) -> Result<(String, Option<String>), AvroSchemaError> {
    let name = o
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| schema_error("a record, enum or fixed type needs a \"name\""))?;
    if PRIMITIVES.contains(&name) {
        return Err(schema_error(format!(
            "{name:?} is a primitive type, not a name"
        )));
    }
    if let Some((space, _)) = name.rsplit_once('.') {
        return Ok((name.to_string(), Some(space.to_string())));
    }
    let space = o
        .get("namespace")
        .and_then(Value::as_str)
        .or(ns)
        .filter(|s| !s.is_empty());
    Ok(match space {
        Some(s) => (format!("{s}.{name}"), Some(s.to_string())),
        None => (name.to_string(), None),
    })
}

#[cfg(test)]
mod tests {
    use super::encode::put_long;
    use super::*;

    const ORDER: &str = r#"{
      "type": "record", "name": "Order", "namespace": "shop",
      "fields": [
        {"name": "id", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "qty", "type": "int"},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}},
        {"name": "note", "type": ["null", "string"], "default": null},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "long"}},
        {"name": "raw", "type": "bytes"},
        {"name": "next", "type": ["null", "Order"]}
      ]}"#;

    #[test]
    fn round_trips_the_json_encoding() {
        let s = AvroSchema::parse(ORDER, &[]).unwrap();
        assert_eq!(s.type_name(), "shop.Order");
        let json = r#"{"id":"o-1","amount":12.5,"qty":3,"at":1700000000000,"status":"PAID","note":{"string":"hi"},"tags":["a","b"],"attrs":{"k":7},"raw":"\u0000\u00ff","next":{"shop.Order":{"id":"o-2","amount":0.1,"qty":-1,"at":0,"status":"NEW","note":null,"tags":[],"attrs":{},"raw":"","next":null}}}"#;
        let bytes = s.encode_from_json(json).unwrap();
        let back: Value = serde_json::from_str(&s.decode_to_json(&bytes).unwrap()).unwrap();
        assert_eq!(back, serde_json::from_str::<Value>(json).unwrap());
        // A datum must use every byte; a wrong schema rarely does.
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(s
            .decode_to_json(&longer)
            .unwrap_err()
            .to_string()
            .contains("1 bytes left"));
        for cut in 0..bytes.len() {
            assert!(s.decode_to_json(&bytes[..cut]).is_err());
        }
    }

    #[test]
    fn edits_are_checked_against_the_schema() {
        let s = AvroSchema::parse(ORDER, &[]).unwrap();
        let e = s.encode_from_json(r#"{"id":1}"#).unwrap_err().to_string();
        assert!(e.contains("at .id: expected string"), "{e}");
        let e = s
            .encode_from_json(r#"{"id":"x","amount":1,"qty":1,"at":1,"status":"GONE","tags":[],"attrs":{},"raw":"","next":null}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("one of NEW, PAID"), "{e}");
        // A bare union value and a defaulted field are accepted.
        let ok = s
            .encode_from_json(r#"{"id":"x","amount":1,"qty":1,"at":1,"status":"NEW","tags":[],"attrs":{},"raw":"","next":null}"#)
            .unwrap();
        assert!(s.decode_to_json(&ok).unwrap().contains(r#""note":null"#));
        let bare = s
            .encode_from_json(r#"{"id":"x","amount":1,"qty":1,"at":1,"status":"NEW","note":"hey","tags":[],"attrs":{},"raw":"","next":null}"#)
            .unwrap();
        assert!(s
            .decode_to_json(&bare)
            .unwrap()
            .contains(r#""note":{"string":"hey"}"#));
    }

    #[test]
    fn references_and_errors() {
        let addr = r#"{"type":"record","name":"Address","namespace":"common","fields":[{"name":"city","type":"string"}]}"#;
        let user = r#"{"type":"record","name":"User","namespace":"acct","fields":[{"name":"home","type":"common.Address"}]}"#;
        let s = AvroSchema::parse(user, &[addr]).unwrap();
        assert_eq!(s.record_names(), vec!["acct.User", "common.Address"]);
        let b = s.encode_from_json(r#"{"home":{"city":"Oslo"}}"#).unwrap();
        assert_eq!(s.decode_to_json(&b).unwrap(), r#"{"home":{"city":"Oslo"}}"#);
        let e = AvroSchema::parse(user, &[]).unwrap_err();
        assert!(e.message.contains("unknown type \"common.Address\""), "{e}");
        let e = AvroSchema::parse("{\n  \"type\": \"record\",\n  oops", &[]).unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(3), "{e}");
    }

    #[test]
    fn names_twice_in_one_record_or_enum_are_refused() {
        let e = AvroSchema::parse(
            r#"{"type":"record","name":"N","fields":[{"name":"by","type":"float"},{"name":"by","type":"string"}]}"#,
            &[],
        )
        .unwrap_err();
        assert!(e.message.contains("the field \"by\" twice"), "{e}");
        let e = AvroSchema::parse(r#"{"type":"enum","name":"S","symbols":["A","B","A"]}"#, &[])
            .unwrap_err();
        assert!(e.message.contains("the symbol \"A\" twice"), "{e}");
    }

    /// Decode errors are stored in the lake's `decode_error` column and searched by text: the
    /// typed errors must keep reading exactly as the strings they replaced.
    #[test]
    fn decode_error_texts_are_stable() {
        let text = |schema: &str, bytes: &[u8]| {
            AvroSchema::parse(schema, &[])
                .unwrap()
                .decode_to_json(bytes)
                .unwrap_err()
                .to_string()
        };
        let nulls = r#"{"type":"array","items":"null"}"#;
        let mut big = Vec::new();
        put_long(&mut big, 1 << 62);
        let mut min = Vec::new();
        put_long(&mut min, i64::MIN);
        let record = r#"{"type":"record","name":"L","fields":[{"name":"n","type":["null","L"]},{"name":"b","type":"boolean"}]}"#;
        for (got, want) in [
            (text(nulls, &big), "not a array Avro datum: block of 4611686018427387904 items is more than the datum holds"),
            (text(nulls, &min), "not a array Avro datum: bad block count"),
            (text(nulls, &[0xff; 11]), "not a array Avro datum: bad varint (cut short, longer than 10 bytes, or over 64 bits)"),
            (text(r#""string""#, &[0x01]), "not a string Avro datum: negative length -1"),
            (text(r#""string""#, &[0x04, 0xff, 0xfe]), "not a string Avro datum: string: invalid utf-8 sequence of 1 bytes from index 0"),
            (text(r#""string""#, &[0x08, b'a']), "not a string Avro datum: needs 4 bytes, 1 left"),
            (text(r#"{"type":"map","values":"int"}"#, &[0x02, 0x02, 0xff, 0x00, 0x00]), "not a map Avro datum: map key: invalid utf-8 sequence of 1 bytes from index 0"),
            (text(r#""int""#, &[0x80, 0x80, 0x80, 0x80, 0x20]), "not a int Avro datum: int 4294967296 out of range"),
            (text(r#"{"type":"enum","name":"E","symbols":["A"]}"#, &[0x04]), "not a E Avro datum: enum index 2 of 1"),
            (text(record, &[0x08]), "not a L Avro datum: n: union branch 4 of 2"),
            (text(record, &[0x02, 0x00, 0x07]), "not a L Avro datum: n: b: boolean byte 7"),
            (text(r#""null""#, &[0x00]), "not a null Avro datum: 1 bytes left after the datum"),
        ] {
            assert_eq!(got, want);
        }
        let deep: Vec<u8> = std::iter::repeat_n(2u8, 300).collect();
        let e = text(record, &deep);
        assert!(e.starts_with("not a L Avro datum: n: n: "), "{e}");
        assert!(e.ends_with(": n: nested too deeply"), "{e}");
    }

    #[test]
    fn hostile_input_is_bounded() {
        let s = AvroSchema::parse(r#"{"type":"array","items":"null"}"#, &[]).unwrap();
        // Claims 2^62 nulls in a few bytes.
        let mut b = Vec::new();
        put_long(&mut b, 1 << 62);
        assert!(s.decode_to_json(&b).is_err());
        let rec = AvroSchema::parse(
            r#"{"type":"record","name":"L","fields":[{"name":"n","type":["null","L"]}]}"#,
            &[],
        )
        .unwrap();
        let deep: Vec<u8> = std::iter::repeat_n(2u8, 10_000).collect();
        assert!(rec.decode_to_json(&deep).is_err());
        for len in 0..200 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 131 % 251) as u8).collect();
            let _ = s.decode_to_json(&junk);
            let _ = rec.decode_to_json(&junk);
        }
    }
}
