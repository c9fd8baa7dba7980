//! Avro JSON (as `decode` prints it, or edited) back to binary datums, checked against the
//! schema on the way: a value that does not fit is a [`WriteError`] naming where it is.

use super::{AvroError, AvroSchema, Node, MAX_DEPTH};
use serde_json::Value;

/// Why edited JSON does not fit the schema.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("nested too deeply")]
    TooDeep,
    #[error("at {}: expected {expected}, got {got}", shown(path))]
    Expected {
        path: String,
        expected: String,
        got: Box<Value>,
    },
    #[error("at {}: {record} has no field {field:?}", shown(path))]
    UnknownField {
        path: String,
        record: String,
        field: String,
    },
    #[error("at {path}: missing (it has no default)")]
    Missing { path: String },
    #[error("at {}: fits no branch of the union [{}]", shown(path), branches.join(", "))]
    NoBranch { path: String, branches: Vec<String> },
}

/// A JSON path as errors print it (`.a.b[0]`); the root has none.
fn shown(path: &str) -> &str {
    if path.is_empty() {
        "the top"
    } else {
        path
    }
}

impl AvroSchema {
    /// Encodes Avro JSON (as `decode_to_json` prints it) back to a binary datum. A union value
    /// may also be given bare when exactly one branch takes it.
    pub fn encode_from_json(&self, json: &str) -> Result<Vec<u8>, AvroError> {
        let fail = |reason: WriteError| AvroError::Encode {
            type_name: self.type_name().to_string(),
            reason,
        };
        let v: Value = serde_json::from_str(json).map_err(|e| fail(e.into()))?;
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
    ) -> Result<(), WriteError> {
        if depth > MAX_DEPTH {
            return Err(WriteError::TooDeep);
        }
        let at = |expected: &str| WriteError::Expected {
            path: path.to_string(),
            expected: expected.to_string(),
            got: Box::new(v.clone()),
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
                    return Err(WriteError::UnknownField {
                        path: path.to_string(),
                        record: self.labels[id].clone(),
                        field: extra.clone(),
                    });
                }
                for f in fields {
                    let fpath = format!("{path}.{}", f.name);
                    match (o.get(&f.name), &f.default) {
                        (Some(fv), _) => self.write(f.node, fv, out, &fpath, depth + 1)?,
                        (None, Some(d)) => self.write_default(f.node, d, out, &fpath)?,
                        (None, None) => return Err(WriteError::Missing { path: fpath }),
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
    ) -> Result<(), WriteError> {
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
        Err(WriteError::NoBranch {
            path: path.to_string(),
            branches: branches.iter().map(|&b| self.labels[b].clone()).collect(),
        })
    }

    /// A field default is given for the union's first branch, unwrapped (Avro spec).
    fn write_default(
        &self,
        id: usize,
        d: &Value,
        out: &mut Vec<u8>,
        path: &str,
    ) -> Result<(), WriteError> {
        match &self.nodes[id] {
            Node::Union(branches) if !branches.is_empty() => {
                put_long(out, 0);
                self.write(branches[0], d, out, path, 1)
            }
            _ => self.write(id, d, out, path, 1),
        }
    }
}

fn unlatin1(s: &str) -> Option<Vec<u8>> {
    s.chars().map(|c| u8::try_from(c as u32).ok()).collect()
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

pub(super) fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}
