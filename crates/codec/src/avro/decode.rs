//! Binary datums to Avro JSON. Every read is bounded by the input and nesting is capped, so a
//! hostile payload ends in a [`ReadError`], never a panic or a runaway allocation.

use super::{AvroError, AvroSchema, Node, MAX_DEPTH};
use crate::schemaless::{varint, zigzag};
use std::fmt::Write as _;
use std::str::Utf8Error;

/// Why a datum did not read with the schema. The text is stored as the event's decode error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    #[error("nested too deeply")]
    TooDeep,
    #[error("boolean byte {0}")]
    Boolean(u8),
    #[error("int {0} out of range")]
    IntOutOfRange(i64),
    #[error("needs {needs} bytes, {left} left")]
    Short { needs: usize, left: usize },
    #[error("bad varint (cut short, longer than 10 bytes, or over 64 bits)")]
    Varint,
    #[error("negative length {0}")]
    NegativeLength(i64),
    #[error("bad block count")]
    BlockCount,
    #[error("block of {0} items is more than the datum holds")]
    BlockTooLarge(i64),
    #[error("string: {0}")]
    StringUtf8(Utf8Error),
    #[error("map key: {0}")]
    MapKeyUtf8(Utf8Error),
    #[error("enum index {index} of {symbols}")]
    EnumIndex { index: i64, symbols: usize },
    #[error("union branch {index} of {branches}")]
    UnionBranch { index: i64, branches: usize },
    /// Inside a record field; fields nest, so the text reads `outer: inner: problem`.
    #[error("{field}: {inner}")]
    InField {
        field: String,
        inner: Box<ReadError>,
    },
    #[error("{0} bytes left after the datum")]
    LeftOver(usize),
}

impl AvroSchema {
    /// Decodes one datum (no container header, no registry frame) to Avro JSON.
    pub fn decode_to_json(&self, bytes: &[u8]) -> Result<String, AvroError> {
        let mut r = Reader {
            buf: bytes,
            depth: 0,
        };
        let mut out = String::with_capacity(bytes.len() * 2 + 16);
        let fail = |reason: ReadError| AvroError::Decode {
            type_name: self.type_name().to_string(),
            reason,
        };
        self.read(self.root, &mut r, &mut out).map_err(fail)?;
        if !r.buf.is_empty() {
            return Err(fail(ReadError::LeftOver(r.buf.len())));
        }
        Ok(out)
    }

    fn read(&self, id: usize, r: &mut Reader, out: &mut String) -> Result<(), ReadError> {
        r.depth += 1;
        if r.depth > MAX_DEPTH {
            return Err(ReadError::TooDeep);
        }
        match &self.nodes[id] {
            Node::Null => out.push_str("null"),
            Node::Boolean => match r.byte()? {
                0 => out.push_str("false"),
                1 => out.push_str("true"),
                b => return Err(ReadError::Boolean(b)),
            },
            Node::Int => {
                let v = r.long()?;
                if i32::try_from(v).is_err() {
                    return Err(ReadError::IntOutOfRange(v));
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
                let s = std::str::from_utf8(r.take(n)?).map_err(ReadError::StringUtf8)?;
                quote(out, s);
            }
            Node::Enum(symbols) => {
                let i = r.long()?;
                let s = usize::try_from(i).ok().and_then(|i| symbols.get(i)).ok_or(
                    ReadError::EnumIndex {
                        index: i,
                        symbols: symbols.len(),
                    },
                )?;
                quote(out, s);
            }
            Node::Union(branches) => {
                let i = r.long()?;
                let b = *usize::try_from(i)
                    .ok()
                    .and_then(|i| branches.get(i))
                    .ok_or(ReadError::UnionBranch {
                        index: i,
                        branches: branches.len(),
                    })?;
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
                    let k = std::str::from_utf8(r.take(n)?).map_err(ReadError::MapKeyUtf8)?;
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
                    self.read(f.node, r, out).map_err(|e| ReadError::InField {
                        field: f.name.clone(),
                        inner: Box::new(e),
                    })?;
                }
                out.push('}');
            }
        }
        r.depth -= 1;
        Ok(())
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    depth: usize,
}

/// Blocks of items whose encoding may be empty (nulls) are not bounded by the input's size;
/// this caps what one datum may claim.
const MAX_ITEMS: usize = 1 << 20;

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, ReadError> {
        Ok(self.take(1)?[0])
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ReadError> {
        if n > self.buf.len() {
            return Err(ReadError::Short {
                needs: n,
                left: self.buf.len(),
            });
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn long(&mut self) -> Result<i64, ReadError> {
        let mut used = 0;
        let v = varint(self.buf, &mut used).ok_or(ReadError::Varint)?;
        self.buf = &self.buf[used..];
        Ok(zigzag(v))
    }

    fn len(&mut self) -> Result<usize, ReadError> {
        let n = self.long()?;
        usize::try_from(n).map_err(|_| ReadError::NegativeLength(n))
    }

    fn blocks(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<(), ReadError>,
    ) -> Result<(), ReadError> {
        let mut total = 0usize;
        loop {
            let mut count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                count = count.checked_neg().ok_or(ReadError::BlockCount)?;
                self.long()?; // the block's size in bytes, for skipping
            }
            total = total.saturating_add(count as usize);
            if total > MAX_ITEMS.max(self.buf.len()) {
                return Err(ReadError::BlockTooLarge(count));
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
