//! Field tables for the transcoder: for one root message type, every message type it reaches,
//! with each field's number, pre-escaped JSON key, wire type, presence and kind, and each
//! enum's names by number. Built once per type and cached. A type whose decoding or printing
//! the tables do not model (groups, extensions, odd well-known-type descriptors, malformed map
//! entries) marks the whole plan as a fallback: such a root decodes on the general path.

use prost_reflect::{DescriptorPool, EnumDescriptor, Kind, MessageDescriptor, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

pub(super) const NO_ONEOF: u32 = u32::MAX;
const NO_FIELD: u32 = u32::MAX;
/// Field numbers below this are looked up in a dense table; larger ones by binary search.
const DENSE_LIMIT: u32 = 1024;
/// Plans kept for types decoded through short-lived codecs (registry-framed payloads).
const CACHE_SIZE: usize = 64;

pub(super) const VARINT: u8 = 0;
pub(super) const FIXED64: u8 = 1;
pub(super) const LEN: u8 = 2;
pub(super) const FIXED32: u8 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scalar {
    Double,
    Float,
    Int32,
    Int64,
    Uint32,
    Uint64,
    Sint32,
    Sint64,
    Fixed32,
    Fixed64,
    Sfixed32,
    Sfixed64,
    Bool,
    String,
    Bytes,
}

impl Scalar {
    pub(super) fn wire(self) -> u8 {
        match self {
            Scalar::Double | Scalar::Fixed64 | Scalar::Sfixed64 => FIXED64,
            Scalar::Float | Scalar::Fixed32 | Scalar::Sfixed32 => FIXED32,
            Scalar::String | Scalar::Bytes => LEN,
            _ => VARINT,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ty {
    Scalar(Scalar),
    /// Index into `Plan::enums`.
    Enum(u32),
    /// Index into `Plan::msgs`.
    Message(u32),
}

impl Ty {
    pub(super) fn wire(self) -> u8 {
        match self {
            Ty::Scalar(s) => s.wire(),
            Ty::Enum(_) => VARINT,
            Ty::Message(_) => LEN,
        }
    }
    pub(super) fn packable(self) -> bool {
        !matches!(
            self,
            Ty::Message(_) | Ty::Scalar(Scalar::String) | Ty::Scalar(Scalar::Bytes)
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Card {
    /// Printed when set if the field tracks presence, else only when not the default.
    Single {
        presence: bool,
    },
    List,
    Map {
        key: Scalar,
        value: Ty,
    },
}

#[derive(Debug)]
pub(super) struct Field {
    pub number: u32,
    /// `"jsonName":`, escaped.
    pub key: Box<[u8]>,
    pub ty: Ty,
    pub card: Card,
    /// Index of a real (two or more members) oneof; proto3 `optional` ones are left out,
    /// as clearing the other members of a one-member oneof changes nothing.
    pub oneof: u32,
}

/// Messages printed in a special form. All but `Empty` and `None` go through prost-types in
/// prost-reflect's serializer (re-encoded and decoded again), which the transcoder mirrors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Wkt {
    None,
    Any,
    Timestamp,
    Duration,
    Struct,
    ListValue,
    Value,
    Empty,
    FieldMask,
    Wrapper(Scalar),
}

impl Wkt {
    pub(super) fn transcoded(self) -> bool {
        !matches!(self, Wkt::None | Wkt::Empty)
    }
    pub(super) fn of(name: &str) -> Option<Wkt> {
        Some(match name {
            "google.protobuf.Any" => Wkt::Any,
            "google.protobuf.Timestamp" => Wkt::Timestamp,
            "google.protobuf.Duration" => Wkt::Duration,
            "google.protobuf.Struct" => Wkt::Struct,
            "google.protobuf.ListValue" => Wkt::ListValue,
            "google.protobuf.Value" => Wkt::Value,
            "google.protobuf.Empty" => Wkt::Empty,
            "google.protobuf.FieldMask" => Wkt::FieldMask,
            "google.protobuf.DoubleValue" => Wkt::Wrapper(Scalar::Double),
            "google.protobuf.FloatValue" => Wkt::Wrapper(Scalar::Float),
            "google.protobuf.Int64Value" => Wkt::Wrapper(Scalar::Int64),
            "google.protobuf.UInt64Value" => Wkt::Wrapper(Scalar::Uint64),
            "google.protobuf.Int32Value" => Wkt::Wrapper(Scalar::Int32),
            "google.protobuf.UInt32Value" => Wkt::Wrapper(Scalar::Uint32),
            "google.protobuf.BoolValue" => Wkt::Wrapper(Scalar::Bool),
            "google.protobuf.StringValue" => Wkt::Wrapper(Scalar::String),
            "google.protobuf.BytesValue" => Wkt::Wrapper(Scalar::Bytes),
            _ => return None,
        })
    }
}

#[derive(Debug)]
pub(super) struct Msg {
    pub wkt: Wkt,
    pub fields: Vec<Field>,
    dense: Vec<u32>,
    pub oneofs: u32,
}

impl Msg {
    #[inline]
    pub(super) fn lookup(&self, number: u32) -> Option<usize> {
        if let Some(&i) = self.dense.get(number as usize) {
            return (i != NO_FIELD).then_some(i as usize);
        }
        self.fields.binary_search_by_key(&number, |f| f.number).ok()
    }
}

#[derive(Debug)]
pub(super) struct EnumT {
    /// `google.protobuf.NullValue` prints `null` whatever the number.
    pub null: bool,
    pub default: i32,
    /// By number: `"NAME"`, escaped, as `EnumDescriptor::get_value` names it.
    names: Vec<(i32, Box<[u8]>)>,
}

impl EnumT {
    pub(super) fn name(&self, n: i32) -> Option<&[u8]> {
        self.names
            .binary_search_by_key(&n, |(k, _)| *k)
            .ok()
            .map(|i| &*self.names[i].1)
    }
}

/// The tables for one root type. `msgs[0]` is the root.
pub(crate) struct Plan {
    pub(super) msgs: Vec<Msg>,
    pub(super) enums: Vec<EnumT>,
    pub(super) pool: DescriptorPool,
    /// Why this root decodes on the general path, when it does.
    pub(super) fallback: Option<&'static str>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("types", &self.msgs.len())
            .field("fallback", &self.fallback)
            .finish()
    }
}

/// The plan for `desc`, from a small process-wide cache: codecs made per payload (framed
/// payloads name their type per message) share the tables instead of rebuilding them.
pub(crate) fn plan_for(desc: &MessageDescriptor) -> Arc<Plan> {
    static CACHE: Mutex<Vec<(MessageDescriptor, Arc<Plan>)>> = Mutex::new(Vec::new());
    let lock = || CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = lock().iter().find(|(d, _)| d == desc) {
        return p.clone();
    }
    // prost-reflect's accessors panic on some malformed pools; the general path then decides
    // (and its own panic, if any, is the guard's).
    let plan = std::panic::catch_unwind(|| build(desc)).unwrap_or_else(|_| Plan {
        msgs: Vec::new(),
        enums: Vec::new(),
        pool: desc.parent_pool().clone(),
        fallback: Some("building the tables panicked"),
    });
    let plan = Arc::new(plan);
    let mut cache = lock();
    if cache.len() >= CACHE_SIZE {
        cache.remove(0);
    }
    cache.push((desc.clone(), plan.clone()));
    plan
}

struct Builder {
    msgs: Vec<Msg>,
    enums: Vec<EnumT>,
    msg_index: HashMap<String, u32>,
    enum_index: HashMap<String, u32>,
    queue: Vec<MessageDescriptor>,
    fallback: Option<&'static str>,
}

fn build(root: &MessageDescriptor) -> Plan {
    let mut b = Builder {
        msgs: Vec::new(),
        enums: Vec::new(),
        msg_index: HashMap::new(),
        enum_index: HashMap::new(),
        queue: Vec::new(),
        fallback: None,
    };
    b.message(root);
    let mut next = 0;
    while next < b.queue.len() {
        let desc = b.queue[next].clone();
        let msg = b.table(&desc);
        b.msgs[next] = msg;
        next += 1;
    }
    Plan {
        msgs: b.msgs,
        enums: b.enums,
        pool: root.parent_pool().clone(),
        fallback: b.fallback,
    }
}

impl Builder {
    fn message(&mut self, desc: &MessageDescriptor) -> u32 {
        if let Some(&i) = self.msg_index.get(desc.full_name()) {
            return i;
        }
        let i = self.msgs.len() as u32;
        self.msg_index.insert(desc.full_name().to_string(), i);
        self.queue.push(desc.clone());
        self.msgs.push(Msg {
            wkt: Wkt::None,
            fields: Vec::new(),
            dense: Vec::new(),
            oneofs: 0,
        });
        i
    }

    fn enumeration(&mut self, desc: &EnumDescriptor) -> u32 {
        if let Some(&i) = self.enum_index.get(desc.full_name()) {
            return i;
        }
        let mut names: Vec<(i32, Box<[u8]>)> = Vec::new();
        for v in desc.values() {
            let n = v.number();
            if names.last().is_some_and(|(k, _)| *k == n) {
                continue;
            }
            let name = desc
                .get_value(n)
                .map_or_else(|| v.name().to_string(), |v| v.name().into());
            names.push((n, quoted(&name).into()));
        }
        names.sort_by_key(|(k, _)| *k);
        names.dedup_by_key(|(k, _)| *k);
        let i = self.enums.len() as u32;
        self.enum_index.insert(desc.full_name().to_string(), i);
        self.enums.push(EnumT {
            null: desc.full_name() == "google.protobuf.NullValue",
            default: desc.default_value().number(),
            names,
        });
        i
    }

    fn give_up(&mut self, why: &'static str) {
        self.fallback.get_or_insert(why);
    }

    fn ty(&mut self, kind: &Kind) -> Ty {
        match kind {
            Kind::Message(m) => Ty::Message(self.message(m)),
            Kind::Enum(e) => Ty::Enum(self.enumeration(e)),
            Kind::Double => Ty::Scalar(Scalar::Double),
            Kind::Float => Ty::Scalar(Scalar::Float),
            Kind::Int32 => Ty::Scalar(Scalar::Int32),
            Kind::Int64 => Ty::Scalar(Scalar::Int64),
            Kind::Uint32 => Ty::Scalar(Scalar::Uint32),
            Kind::Uint64 => Ty::Scalar(Scalar::Uint64),
            Kind::Sint32 => Ty::Scalar(Scalar::Sint32),
            Kind::Sint64 => Ty::Scalar(Scalar::Sint64),
            Kind::Fixed32 => Ty::Scalar(Scalar::Fixed32),
            Kind::Fixed64 => Ty::Scalar(Scalar::Fixed64),
            Kind::Sfixed32 => Ty::Scalar(Scalar::Sfixed32),
            Kind::Sfixed64 => Ty::Scalar(Scalar::Sfixed64),
            Kind::Bool => Ty::Scalar(Scalar::Bool),
            Kind::String => Ty::Scalar(Scalar::String),
            Kind::Bytes => Ty::Scalar(Scalar::Bytes),
        }
    }

    fn table(&mut self, desc: &MessageDescriptor) -> Msg {
        if desc.extensions().len() > 0 {
            self.give_up("the type has extensions");
        }
        let mut fields = Vec::new();
        let mut oneof_ids: HashMap<String, u32> = HashMap::new();
        for f in desc.fields() {
            if f.is_group() {
                self.give_up("group fields");
            }
            let card = if f.is_map() {
                let Kind::Message(entry) = f.kind() else {
                    unreachable!("is_map implies a message kind")
                };
                let (Some(k), Some(v)) = (entry.get_field(1), entry.get_field(2)) else {
                    self.give_up("a map entry without key or value");
                    continue;
                };
                let key = match self.ty(&k.kind()) {
                    Ty::Scalar(s)
                        if !matches!(s, Scalar::Double | Scalar::Float | Scalar::Bytes) =>
                    {
                        s
                    }
                    _ => {
                        self.give_up("a map key of a type keys cannot have");
                        continue;
                    }
                };
                if v.is_group() || v.is_list() || v.is_map() {
                    self.give_up("a map value of an unusual shape");
                }
                Card::Map {
                    key,
                    value: self.ty(&v.kind()),
                }
            } else if f.is_list() {
                Card::List
            } else {
                let presence = f.supports_presence();
                if !presence && f.default_value() != Value::default_value(&f.kind()) {
                    self.give_up("a custom default without presence");
                }
                Card::Single { presence }
            };
            let ty = match card {
                Card::Map { value, .. } => value,
                _ => self.ty(&f.kind()),
            };
            let oneof = match f.containing_oneof() {
                Some(o) if o.fields().len() > 1 => {
                    let n = oneof_ids.len() as u32;
                    *oneof_ids.entry(o.full_name().to_string()).or_insert(n)
                }
                _ => NO_ONEOF,
            };
            let mut key = quoted(f.json_name());
            key.push(b':');
            fields.push(Field {
                number: f.number(),
                key: key.into(),
                ty,
                card,
                oneof,
            });
        }
        let max = fields.last().map_or(0, |f| f.number);
        let mut dense = vec![NO_FIELD; (max.min(DENSE_LIMIT - 1) + 1) as usize];
        for (i, f) in fields.iter().enumerate() {
            if let Some(d) = dense.get_mut(f.number as usize) {
                *d = i as u32;
            }
        }
        let wkt = Wkt::of(desc.full_name()).unwrap_or(Wkt::None);
        let msg = Msg {
            wkt,
            fields,
            dense,
            oneofs: oneof_ids.len() as u32,
        };
        if !self.shape_ok(&msg) {
            self.give_up("a well-known type with an unexpected descriptor");
        }
        msg
    }

    /// The well-known types are printed from prost-types' structs after a re-encode, so their
    /// descriptors must be the standard ones for the tables to read them the same way.
    fn shape_ok(&self, m: &Msg) -> bool {
        use Scalar::*;
        let is = |fields: &[(u32, Ty, Card)]| {
            m.fields.len() == fields.len()
                && m.fields
                    .iter()
                    .zip(fields)
                    .all(|(f, (n, t, c))| f.number == *n && f.ty == *t && f.card == *c)
        };
        let name_of = |t: Ty| match t {
            Ty::Message(i) => self
                .msg_index
                .iter()
                .find(|(_, &v)| v == i)
                .map(|(k, _)| k.as_str()),
            Ty::Enum(i) => self
                .enum_index
                .iter()
                .find(|(_, &v)| v == i)
                .map(|(k, _)| k.as_str()),
            Ty::Scalar(_) => None,
        };
        let plain = Card::Single { presence: false };
        let set = Card::Single { presence: true };
        match m.wkt {
            Wkt::None | Wkt::Empty => true,
            Wkt::Timestamp | Wkt::Duration => {
                is(&[(1, Ty::Scalar(Int64), plain), (2, Ty::Scalar(Int32), plain)])
            }
            Wkt::Wrapper(s) => is(&[(1, Ty::Scalar(s), plain)]),
            Wkt::Any => is(&[
                (1, Ty::Scalar(String), plain),
                (2, Ty::Scalar(Bytes), plain),
            ]),
            Wkt::FieldMask => is(&[(1, Ty::Scalar(String), Card::List)]),
            Wkt::Struct => {
                m.fields.len() == 1
                    && m.fields[0].number == 1
                    && matches!(m.fields[0].card, Card::Map { key: String, value }
                        if name_of(value) == Some("google.protobuf.Value"))
            }
            Wkt::ListValue => {
                m.fields.len() == 1
                    && m.fields[0].number == 1
                    && m.fields[0].card == Card::List
                    && name_of(m.fields[0].ty) == Some("google.protobuf.Value")
            }
            Wkt::Value => {
                let f = &m.fields;
                f.len() == 6
                    && f.iter()
                        .enumerate()
                        .all(|(i, f)| f.number == i as u32 + 1 && f.card == set && f.oneof == 0)
                    && name_of(f[0].ty) == Some("google.protobuf.NullValue")
                    && f[1].ty == Ty::Scalar(Double)
                    && f[2].ty == Ty::Scalar(String)
                    && f[3].ty == Ty::Scalar(Bool)
                    && name_of(f[4].ty) == Some("google.protobuf.Struct")
                    && name_of(f[5].ty) == Some("google.protobuf.ListValue")
            }
        }
    }
}

/// `"text"` as JSON, escaped the way serde_json escapes.
pub(super) fn quoted(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 2);
    super::json::string(&mut v, s.as_bytes());
    v
}
