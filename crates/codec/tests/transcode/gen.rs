//! Random messages of any type (every field kind, repeated, maps, oneofs, nesting and the
//! well-known types, with the awkward values: NaN, -0.0, extremes, escapes, unknown enum
//! numbers, out-of-range timestamps), wire-level reshaping (fields out of order, a message
//! repeated so it merges, unknown fields) and byte mutations.

use super::Rng;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value,
};
use std::collections::HashMap;

pub struct Gen {
    pub rng: Rng,
    types: Vec<MessageDescriptor>,
    /// Maps of up to four entries (else at most one, whose order cannot differ).
    pub big_maps: bool,
    pub max_depth: u32,
}

const CHARS: &[char] = &[
    'a', 'b', 'z', 'A', '0', '_', ' ', '"', '\\', '/', '\n', '\t', '\u{1}', '\u{1f}', '\u{7f}',
    'é', '\u{2028}', '😀', '中',
];

impl Gen {
    pub fn new(rng: Rng, pool: &DescriptorPool) -> Self {
        Gen {
            rng,
            types: pool.all_messages().filter(|m| !m.is_map_entry()).collect(),
            big_maps: false,
            max_depth: 4,
        }
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.rng.below(one_in) == 0
    }

    pub fn message(&mut self, desc: &MessageDescriptor, depth: u32) -> DynamicMessage {
        let mut m = DynamicMessage::new(desc.clone());
        match desc.full_name() {
            "google.protobuf.Timestamp" | "google.protobuf.Duration" => {
                let ts = desc.full_name().ends_with("Timestamp");
                let seconds = if self.chance(30) {
                    self.i64()
                } else if ts {
                    -62_135_596_800 + (self.rng.next() % 315_537_897_600) as i64
                } else {
                    (self.rng.next() % 630_000_000_000) as i64 - 315_000_000_000
                };
                let nanos = match self.rng.below(5) {
                    0 => 0,
                    1 => (self.rng.below(1000) * 1_000_000) as i32,
                    2 if self.chance(4) => self.i32(),
                    2 if !ts && seconds < 0 => -(self.rng.below(1_000_000_000) as i32),
                    _ => self.rng.below(1_000_000_000) as i32,
                };
                m.set_field_by_number(1, Value::I64(seconds));
                m.set_field_by_number(2, Value::I32(nanos));
            }
            "google.protobuf.FieldMask" => {
                let parts = [
                    "foo", "foo_bar", "a1", "x_y_z", "", "Foo", "a__b", "a_1", "é",
                ];
                let paths = (0..self.rng.below(4))
                    .map(|_| {
                        let n = 1 + self.rng.below(3);
                        let good = !self.chance(6);
                        let path: Vec<&str> = (0..n)
                            .map(|_| parts[self.rng.below(if good { 4 } else { parts.len() })])
                            .collect();
                        Value::String(path.join("."))
                    })
                    .collect();
                m.set_field_by_number(1, Value::List(paths));
            }
            "google.protobuf.Any" if depth < self.max_depth => {
                let inner = self.types[self.rng.below(self.types.len())].clone();
                let name = inner.full_name().to_string();
                let url = match self.rng.below(20) {
                    0 => "no-slash".to_string(),
                    1 => "type.googleapis.com/no.such.Type".to_string(),
                    2 => format!("type.googleapis.com/.{name}"),
                    3 => format!("/{name}"),
                    _ => format!("type.googleapis.com/{name}"),
                };
                let value = if self.chance(12) {
                    self.bytes()
                } else {
                    self.message(&inner, depth + 1).encode_to_vec()
                };
                m.set_field_by_number(1, Value::String(url));
                m.set_field_by_number(2, Value::Bytes(value.into()));
            }
            _ => {
                for f in desc.fields() {
                    if self.chance(3) {
                        continue;
                    }
                    if let Some(v) = self.field(&f, depth) {
                        m.set_field(&f, v);
                    }
                }
            }
        }
        m
    }

    fn field(&mut self, f: &FieldDescriptor, depth: u32) -> Option<Value> {
        if f.is_map() {
            let Kind::Message(entry) = f.kind() else {
                return None;
            };
            let (k, v) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            let n = self.rng.below(if self.big_maps { 5 } else { 2 });
            let mut map = HashMap::new();
            for _ in 0..n {
                let key = self.key(&k.kind());
                if let Some(value) = self.value(&v.kind(), depth) {
                    map.insert(key, value);
                }
            }
            Some(Value::Map(map))
        } else if f.is_list() {
            let n = self.rng.below(5);
            let items = (0..n)
                .filter_map(|_| self.value(&f.kind(), depth))
                .collect();
            Some(Value::List(items))
        } else {
            self.value(&f.kind(), depth)
        }
    }

    fn key(&mut self, kind: &Kind) -> MapKey {
        match kind {
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(self.i32()),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(self.i64()),
            Kind::Uint32 | Kind::Fixed32 => MapKey::U32(self.i32() as u32),
            Kind::Uint64 | Kind::Fixed64 => MapKey::U64(self.i64() as u64),
            Kind::Bool => MapKey::Bool(self.chance(2)),
            _ => MapKey::String(self.string()),
        }
    }

    fn value(&mut self, kind: &Kind, depth: u32) -> Option<Value> {
        Some(match kind {
            Kind::Double => Value::F64(self.f64()),
            Kind::Float => Value::F32(self.f64() as f32),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(self.i32()),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(self.i64()),
            Kind::Uint32 | Kind::Fixed32 => Value::U32(self.i32() as u32),
            Kind::Uint64 | Kind::Fixed64 => Value::U64(self.i64() as u64),
            Kind::Bool => Value::Bool(self.chance(2)),
            Kind::String => Value::String(self.string()),
            Kind::Bytes => Value::Bytes(self.bytes().into()),
            Kind::Enum(e) => {
                let values: Vec<i32> = e.values().map(|v| v.number()).collect();
                if self.chance(5) || values.is_empty() {
                    Value::EnumNumber(self.i32())
                } else {
                    Value::EnumNumber(values[self.rng.below(values.len())])
                }
            }
            Kind::Message(m) => {
                if depth >= self.max_depth {
                    return None;
                }
                Value::Message(self.message(m, depth + 1))
            }
        })
    }

    fn i32(&mut self) -> i32 {
        match self.rng.below(7) {
            0 => 0,
            1 => -1,
            2 => i32::MIN,
            3 => i32::MAX,
            4 => self.rng.next() as i32,
            _ => self.rng.below(300) as i32,
        }
    }

    fn i64(&mut self) -> i64 {
        match self.rng.below(7) {
            0 => 0,
            1 => -1,
            2 => i64::MIN,
            3 => i64::MAX,
            4 => self.rng.next() as i64,
            _ => self.rng.below(1 << 20) as i64,
        }
    }

    fn f64(&mut self) -> f64 {
        match self.rng.below(14) {
            0 => 0.0,
            1 => -0.0,
            2 => f64::NAN,
            3 => f64::INFINITY,
            4 => f64::NEG_INFINITY,
            5 => f64::MIN_POSITIVE / 3.0,
            6 => f64::from_bits(self.rng.next()),
            7 => f32::from_bits(self.rng.next() as u32) as f64,
            8 => 0.1,
            9 => 1e21,
            10 => f64::MAX,
            _ => (self.rng.below(20_000) as f64 - 10_000.0) / 8.0,
        }
    }

    fn string(&mut self) -> String {
        (0..self.rng.below(9))
            .map(|_| CHARS[self.rng.below(CHARS.len())])
            .collect()
    }

    fn bytes(&mut self) -> Vec<u8> {
        (0..self.rng.below(9))
            .map(|_| self.rng.next() as u8)
            .collect()
    }

    /// Reshapes an encoding without changing what it means to the general path: top-level
    /// fields shuffled, a second message appended (they merge), unknown fields added.
    pub fn reshape(&mut self, desc: &MessageDescriptor, bytes: &mut Vec<u8>) {
        if self.chance(4) {
            if let Some(mut fields) = split(bytes) {
                for i in (1..fields.len()).rev() {
                    fields.swap(i, self.rng.below(i + 1));
                }
                *bytes = fields.concat();
            }
        }
        if self.chance(4) {
            let more = self.message(desc, 1).encode_to_vec();
            bytes.extend(more);
        }
        if self.chance(4) {
            let mut n = 1 + self.rng.below(2000) as u32;
            while desc.get_field(n).is_some() || desc.get_extension(n).is_some() {
                n += 1;
            }
            let unknown = match self.rng.below(5) {
                0 => [key(n, 0), vec![0x96, 0x01]].concat(),
                1 => [key(n, 1), vec![7; 8]].concat(),
                2 => [key(n, 2), vec![2, 0xff, 0xfe]].concat(),
                3 => [key(n, 5), vec![1; 4]].concat(),
                _ => [key(n, 3), key(1, 0), vec![1], key(n, 4)].concat(),
            };
            let at = split(bytes).map_or(0, |f| f[..self.rng.below(f.len() + 1)].concat().len());
            bytes.splice(at..at, unknown);
        }
    }
}

fn key(n: u32, wt: u32) -> Vec<u8> {
    let mut v = Vec::new();
    prost::encoding::encode_varint(u64::from(n << 3 | wt), &mut v);
    v
}

/// The top-level fields of an encoding (none with groups).
fn split(bytes: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut buf = bytes;
    let mut fields = Vec::new();
    while !buf.is_empty() {
        let start = bytes.len() - buf.len();
        let (_, wt) = prost::encoding::decode_key(&mut buf).ok()?;
        let len = match wt {
            prost::encoding::WireType::Varint => {
                prost::encoding::decode_varint(&mut buf).ok()?;
                0
            }
            prost::encoding::WireType::SixtyFourBit => 8,
            prost::encoding::WireType::ThirtyTwoBit => 4,
            prost::encoding::WireType::LengthDelimited => {
                prost::encoding::decode_varint(&mut buf).ok()? as usize
            }
            _ => return None,
        };
        buf = buf.get(len..)?;
        fields.push(bytes[start..bytes.len() - buf.len()].to_vec());
    }
    Some(fields)
}
