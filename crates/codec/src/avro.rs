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
//! must use every byte (a wrong schema rarely does).

use crate::schemaless::{varint, zigzag};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

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

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AvroError {
    #[error("not a {type_name} Avro datum: {reason}")]
    Decode { type_name: String, reason: String },
    #[error("does not fit {type_name}: {reason}")]
    Encode { type_name: String, reason: String },
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

    /// Decodes one datum (no container header, no registry frame) to Avro JSON.
    pub fn decode_to_json(&self, bytes: &[u8]) -> Result<String, AvroError> {
        let mut r = Reader {
            buf: bytes,
            depth: 0,
        };
        let mut out = String::with_capacity(bytes.len() * 2 + 16);
        let fail = |reason: String| AvroError::Decode {
            type_name: self.type_name().to_string(),
            reason,
        };
        self.read(self.root, &mut r, &mut out).map_err(fail)?;
        if !r.buf.is_empty() {
            return Err(fail(format!("{} bytes left after the datum", r.buf.len())));
        }
        Ok(out)
    }

    fn read(&self, id: usize, r: &mut Reader, out: &mut String) -> Result<(), String> {
        r.depth += 1;
        if r.depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        match &self.nodes[id] {
            Node::Null => out.push_str("null"),
            Node::Boolean => match r.byte()? {
                0 => out.push_str("false"),
                1 => out.push_str("true"),
                b => return Err(format!("boolean byte {b}")),
            },
            Node::Int => {
                let v = r.long()?;
                if i32::try_from(v).is_err() {
                    return Err(format!("int {v} out of range"));
                }
                let _ = write!(out, "{v}");
            }
            Node::Long => {
                let _ = write!(out, "{}", r.long()?);
            }
            Node::Float => {
                let b = r.take(4)?;
                number(
                    out,
                    f32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f64,
                    true,
                );
            }
            Node::Double => {
                let b = r.take(8)?;
                number(
                    out,
                    f64::from_le_bytes(b.try_into().unwrap_or([0; 8])),
                    false,
                );
            }
            Node::Bytes => {
                let n = r.len()?;
                latin1(out, r.take(n)?);
            }
            Node::Fixed(n) => latin1(out, r.take(*n)?),
            Node::String => {
                let n = r.len()?;
                let s = std::str::from_utf8(r.take(n)?).map_err(|e| format!("string: {e}"))?;
                quote(out, s);
            }
            Node::Enum(symbols) => {
                let i = r.long()?;
                let s = usize::try_from(i)
                    .ok()
                    .and_then(|i| symbols.get(i))
                    .ok_or_else(|| format!("enum index {i} of {}", symbols.len()))?;
                quote(out, s);
            }
            Node::Union(branches) => {
                let i = r.long()?;
                let b = *usize::try_from(i)
                    .ok()
                    .and_then(|i| branches.get(i))
                    .ok_or_else(|| format!("union branch {i} of {}", branches.len()))?;
                if matches!(self.nodes[b], Node::Null) {
                    out.push_str("null");
                } else {
                    out.push('{');
                    quote(out, &self.labels[b]);
                    out.push(':');
                    self.read(b, r, out)?;
                    out.push('}');
                }
            }
            Node::Array(items) => {
                out.push('[');
                let mut first = true;
                r.blocks(|r| {
                    if !std::mem::take(&mut first) {
                        out.push(',');
                    }
                    self.read(*items, r, out)
                })?;
                out.push(']');
            }
            Node::Map(values) => {
                out.push('{');
                let mut first = true;
                r.blocks(|r| {
                    if !std::mem::take(&mut first) {
                        out.push(',');
                    }
                    let n = r.len()?;
                    let k = std::str::from_utf8(r.take(n)?).map_err(|e| format!("map key: {e}"))?;
                    quote(out, k);
                    out.push(':');
                    self.read(*values, r, out)
                })?;
                out.push('}');
            }
            Node::Record(fields) => {
                out.push('{');
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    quote(out, &f.name);
                    out.push(':');
                    self.read(f.node, r, out)
                        .map_err(|e| format!("{}: {e}", f.name))?;
                }
                out.push('}');
            }
        }
        r.depth -= 1;
        Ok(())
    }

    /// Encodes Avro JSON (as `decode_to_json` prints it) back to a binary datum. A union value
    /// may also be given bare when exactly one branch takes it.
    pub fn encode_from_json(&self, json: &str) -> Result<Vec<u8>, AvroError> {
        let fail = |reason: String| AvroError::Encode {
            type_name: self.type_name().to_string(),
            reason,
        };
        let v: Value = serde_json::from_str(json).map_err(|e| fail(e.to_string()))?;
        let mut out = Vec::new();
        self.write(self.root, &v, &mut out, "", 0).map_err(fail)?;
        Ok(out)
    }

    fn write(
        &self,
        id: usize,
        v: &Value,
        out: &mut Vec<u8>,
        path: &str,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        let at = |what: &str| {
            let p = if path.is_empty() { "the top" } else { path };
            format!("at {p}: expected {what}, got {v}")
        };
        match (&self.nodes[id], v) {
            (Node::Null, Value::Null) => {}
            (Node::Boolean, Value::Bool(b)) => out.push(*b as u8),
            (Node::Int, Value::Number(n)) => {
                let i = n
                    .as_i64()
                    .filter(|i| i32::try_from(*i).is_ok())
                    .ok_or_else(|| at("an int"))?;
                put_long(out, i);
            }
            (Node::Long, Value::Number(n)) => {
                put_long(out, n.as_i64().ok_or_else(|| at("a long"))?)
            }
            (Node::Float, _) => {
                out.extend((float(v).ok_or_else(|| at("a float"))? as f32).to_le_bytes())
            }
            (Node::Double, _) => out.extend(float(v).ok_or_else(|| at("a double"))?.to_le_bytes()),
            (Node::Bytes, Value::String(s)) => {
                let b = unlatin1(s).ok_or_else(|| at("bytes as code points 0-255"))?;
                put_long(out, b.len() as i64);
                out.extend(b);
            }
            (Node::Fixed(n), Value::String(s)) => {
                let b = unlatin1(s)
                    .filter(|b| b.len() == *n)
                    .ok_or_else(|| at(&format!("{n} bytes as code points 0-255")))?;
                out.extend(b);
            }
            (Node::String, Value::String(s)) => {
                put_long(out, s.len() as i64);
                out.extend(s.as_bytes());
            }
            (Node::Enum(symbols), Value::String(s)) => {
                let i = symbols
                    .iter()
                    .position(|x| x == s)
                    .ok_or_else(|| at(&format!("one of {}", symbols.join(", "))))?;
                put_long(out, i as i64);
            }
            (Node::Array(items), Value::Array(a)) => {
                if !a.is_empty() {
                    put_long(out, a.len() as i64);
                    for (i, item) in a.iter().enumerate() {
                        self.write(*items, item, out, &format!("{path}[{i}]"), depth + 1)?;
                    }
                }
                out.push(0);
            }
            (Node::Map(values), Value::Object(o)) => {
                if !o.is_empty() {
                    put_long(out, o.len() as i64);
                    for (k, item) in o {
                        put_long(out, k.len() as i64);
                        out.extend(k.as_bytes());
                        self.write(*values, item, out, &format!("{path}.{k}"), depth + 1)?;
                    }
                }
                out.push(0);
            }
            (Node::Record(fields), Value::Object(o)) => {
                if let Some(extra) = o.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
                    return Err(format!(
                        "at {}: {} has no field {extra:?}",
                        if path.is_empty() { "the top" } else { path },
                        self.labels[id]
                    ));
                }
                for f in fields {
                    let fpath = format!("{path}.{}", f.name);
                    match (o.get(&f.name), &f.default) {
                        (Some(fv), _) => self.write(f.node, fv, out, &fpath, depth + 1)?,
                        (None, Some(d)) => self.write_default(f.node, d, out, &fpath)?,
                        (None, None) => {
                            return Err(format!("at {fpath}: missing (it has no default)"))
                        }
                    }
                }
            }
            (Node::Union(branches), _) => return self.write_union(branches, v, out, path, depth),
            _ => return Err(at(&self.labels[id])),
        }
        Ok(())
    }

    fn write_union(
        &self,
        branches: &[usize],
        v: &Value,
        out: &mut Vec<u8>,
        path: &str,
        depth: usize,
    ) -> Result<(), String> {
        // The encoding's own form: null, or {"branch name": value}.
        let named = match v {
            Value::Null => branches
                .iter()
                .position(|&b| matches!(self.nodes[b], Node::Null))
                .map(|i| (i, v)),
            Value::Object(o) if o.len() == 1 => {
                let (k, inner) = o.iter().next().expect("one entry");
                branches
                    .iter()
                    .position(|&b| &self.labels[b] == k)
                    .map(|i| (i, inner))
            }
            _ => None,
        };
        if let Some((i, inner)) = named {
            put_long(out, i as i64);
            return self.write(branches[i], inner, out, path, depth + 1);
        }
        // A bare value: the first branch that takes it.
        for (i, &b) in branches.iter().enumerate() {
            let mut attempt = Vec::new();
            put_long(&mut attempt, i as i64);
            if self.write(b, v, &mut attempt, path, depth + 1).is_ok() {
                out.extend(attempt);
                return Ok(());
            }
        }
        let names: Vec<&str> = branches.iter().map(|&b| self.labels[b].as_str()).collect();
        Err(format!(
            "at {}: fits no branch of the union [{}]",
            if path.is_empty() { "the top" } else { path },
            names.join(", ")
        ))
    }

    /// A field default is given for the union's first branch, unwrapped (Avro spec).
    fn write_default(
        &self,
        id: usize,
        d: &Value,
        out: &mut Vec<u8>,
        path: &str,
    ) -> Result<(), String> {
        match &self.nodes[id] {
            Node::Union(branches) if !branches.is_empty() => {
                put_long(out, 0);
                self.write(branches[0], d, out, path, 1)
            }
            _ => self.write(id, d, out, path, 1),
        }
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

struct Reader<'a> {
    buf: &'a [u8],
    depth: usize,
}

/// Blocks of items whose encoding may be empty (nulls) are not bounded by the input's size;
/// this caps what one datum may claim.
const MAX_ITEMS: usize = 1 << 20;

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.buf.len() {
            return Err(format!("needs {n} bytes, {} left", self.buf.len()));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn long(&mut self) -> Result<i64, String> {
        let mut used = 0;
        let v = varint(self.buf, &mut used)
            .ok_or("bad varint (cut short, longer than 10 bytes, or over 64 bits)")?;
        self.buf = &self.buf[used..];
        Ok(zigzag(v))
    }

    fn len(&mut self) -> Result<usize, String> {
        let n = self.long()?;
        usize::try_from(n).map_err(|_| format!("negative length {n}"))
    }

    fn blocks(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut total = 0usize;
        loop {
            let mut count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                count = count.checked_neg().ok_or("bad block count")?;
                self.long()?; // the block's size in bytes, for skipping
            }
            total = total.saturating_add(count as usize);
            if total > MAX_ITEMS.max(self.buf.len()) {
                return Err(format!(
                    "block of {count} items is more than the datum holds"
                ));
            }
            for _ in 0..count {
                item(self)?;
            }
        }
    }
}

fn quote(out: &mut String, s: &str) {
    // serde_json's escaping, without building a Value.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

fn latin1(out: &mut String, b: &[u8]) {
    let s: String = b.iter().map(|&c| c as char).collect();
    quote(out, &s);
}

fn unlatin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(c as u32).ok()).collect()
}

fn number(out: &mut String, v: f64, single: bool) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else if single {
        // The shortest text that reads back as the same f32 (0.1, not 0.10000000149011612).
        let _ = write!(out, "{}", v as f32);
    } else {
        let _ = write!(
            out,
            "{}",
            serde_json::Number::from_f64(v)
                .map(|n| n.to_string())
                .unwrap_or_default()
        );
    }
}

fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

#[cfg(test)]
mod tests {
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
