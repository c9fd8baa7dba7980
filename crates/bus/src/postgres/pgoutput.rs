//! pgoutput's messages (protocol version 1) as logical replication sends them inside XLogData:
//! relations (a table's columns and their types), and the changes made to them. Begin and
//! Commit arrive already parsed from the replication client. Every length is checked against
//! what is left, so a malformed message is an error, never a panic or a huge allocation.

/// A table as a Relation message describes it; changes name it by `id`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Relation {
    pub id: u32,
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Column {
    pub name: String,
    pub type_oid: u32,
    /// Part of the replica identity (the key an update or delete names the row by).
    pub key: bool,
}

/// One column's value in a change.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    /// A TOASTed value the change did not touch: PostgreSQL does not send it again.
    Unchanged,
    /// The value in PostgreSQL's text form.
    Text(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Change {
    Insert {
        relation: u32,
        new: Vec<Value>,
    },
    /// `old` is the old key ('K') or, with REPLICA IDENTITY FULL, the old row ('O').
    Update {
        relation: u32,
        old: Option<(Vec<Value>, bool)>,
        new: Vec<Value>,
    },
    Delete {
        relation: u32,
        old: (Vec<Value>, bool),
    },
    Truncate {
        relations: Vec<u32>,
        cascade: bool,
        restart_identity: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Message {
    Relation(Relation),
    Change(Change),
    /// Begin, Commit, Origin, Type and logical messages: read elsewhere or not needed.
    Other,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("malformed pgoutput message ({0})")]
pub(crate) struct Malformed(&'static str);

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Malformed> {
        if self.b.len() < n {
            return Err(Malformed(what));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, Malformed> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, Malformed> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, Malformed> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn cstr(&mut self, what: &'static str) -> Result<String, Malformed> {
        let end = self.b.iter().position(|&c| c == 0).ok_or(Malformed(what))?;
        let s = String::from_utf8_lossy(&self.b[..end]).into_owned();
        self.b = &self.b[end + 1..];
        Ok(s)
    }
    fn tuple(&mut self) -> Result<Vec<Value>, Malformed> {
        let n = self.u16("tuple column count")?;
        let mut out = Vec::with_capacity(usize::from(n).min(self.b.len()));
        for _ in 0..n {
            out.push(match self.u8("tuple column kind")? {
                b'n' => Value::Null,
                b'u' => Value::Unchanged,
                b't' | b'b' => {
                    let len = self.u32("value length")? as usize;
                    Value::Text(self.take(len, "value")?.to_vec())
                }
                _ => return Err(Malformed("tuple column kind")),
            });
        }
        Ok(out)
    }
    /// An old tuple marked 'K' (key) or 'O' (the whole old row).
    fn old(&mut self, marker: u8) -> Result<(Vec<Value>, bool), Malformed> {
        match marker {
            b'K' => Ok((self.tuple()?, false)),
            b'O' => Ok((self.tuple()?, true)),
            _ => Err(Malformed("old tuple marker")),
        }
    }
}

pub(crate) fn parse(data: &[u8]) -> Result<Message, Malformed> {
    let mut r = Reader { b: data };
    Ok(match r.u8("message type")? {
        b'R' => {
            let id = r.u32("relation id")?;
            let schema = r.cstr("namespace")?;
            let name = r.cstr("relation name")?;
            r.u8("replica identity")?;
            let n = r.u16("column count")?;
            let mut columns = Vec::with_capacity(usize::from(n).min(r.b.len()));
            for _ in 0..n {
                let flags = r.u8("column flags")?;
                let name = r.cstr("column name")?;
                let type_oid = r.u32("column type")?;
                r.u32("type modifier")?;
                columns.push(Column {
                    name,
                    type_oid,
                    key: flags & 1 == 1,
                });
            }
            Message::Relation(Relation {
                id,
                schema,
                name,
                columns,
            })
        }
        b'I' => {
            let relation = r.u32("relation id")?;
            if r.u8("new tuple marker")? != b'N' {
                return Err(Malformed("new tuple marker"));
            }
            Message::Change(Change::Insert {
                relation,
                new: r.tuple()?,
            })
        }
        b'U' => {
            let relation = r.u32("relation id")?;
            let mut marker = r.u8("tuple marker")?;
            let old = if marker == b'K' || marker == b'O' {
                let old = r.old(marker)?;
                marker = r.u8("new tuple marker")?;
                Some(old)
            } else {
                None
            };
            if marker != b'N' {
                return Err(Malformed("new tuple marker"));
            }
            Message::Change(Change::Update {
                relation,
                old,
                new: r.tuple()?,
            })
        }
        b'D' => {
            let relation = r.u32("relation id")?;
            let marker = r.u8("old tuple marker")?;
            Message::Change(Change::Delete {
                relation,
                old: r.old(marker)?,
            })
        }
        b'T' => {
            let n = r.u32("relation count")?;
            let options = r.u8("truncate options")?;
            let mut relations = Vec::with_capacity((n as usize).min(r.b.len() / 4));
            for _ in 0..n {
                relations.push(r.u32("relation id")?);
            }
            Message::Change(Change::Truncate {
                relations,
                cascade: options & 1 == 1,
                restart_identity: options & 2 == 2,
            })
        }
        _ => Message::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tuple(values: &[Option<&str>]) -> Vec<u8> {
        let mut b = (values.len() as u16).to_be_bytes().to_vec();
        for v in values {
            match v {
                None => b.push(b'n'),
                Some(s) => {
                    b.push(b't');
                    b.extend((s.len() as u32).to_be_bytes());
                    b.extend(s.as_bytes());
                }
            }
        }
        b
    }

    #[test]
    fn relations_and_changes_parse() {
        let mut rel = vec![b'R'];
        rel.extend(16385u32.to_be_bytes());
        rel.extend(b"public\0orders\0d");
        rel.extend(2u16.to_be_bytes());
        rel.push(1);
        rel.extend(b"id\0");
        rel.extend(23u32.to_be_bytes());
        rel.extend((-1i32).to_be_bytes());
        rel.push(0);
        rel.extend(b"status\0");
        rel.extend(25u32.to_be_bytes());
        rel.extend((-1i32).to_be_bytes());
        let Message::Relation(r) = parse(&rel).unwrap() else {
            panic!()
        };
        assert_eq!(
            (r.schema.as_str(), r.name.as_str(), r.columns.len()),
            ("public", "orders", 2)
        );
        assert!(r.columns[0].key && !r.columns[1].key);

        let mut ins = vec![b'I'];
        ins.extend(16385u32.to_be_bytes());
        ins.push(b'N');
        ins.extend(tuple(&[Some("1"), None]));
        assert_eq!(
            parse(&ins).unwrap(),
            Message::Change(Change::Insert {
                relation: 16385,
                new: vec![Value::Text(b"1".to_vec()), Value::Null]
            })
        );

        let mut upd = vec![b'U'];
        upd.extend(16385u32.to_be_bytes());
        upd.push(b'O');
        upd.extend(tuple(&[Some("1"), Some("PAID")]));
        upd.push(b'N');
        upd.extend(tuple(&[Some("1"), Some("FAILED")]));
        let Message::Change(Change::Update {
            old: Some((old, full)),
            new,
            ..
        }) = parse(&upd).unwrap()
        else {
            panic!()
        };
        assert!(
            full && old[1] == Value::Text(b"PAID".to_vec())
                && new[1] == Value::Text(b"FAILED".to_vec())
        );

        let mut del = vec![b'D'];
        del.extend(16385u32.to_be_bytes());
        del.push(b'K');
        del.extend(tuple(&[Some("1"), None]));
        assert!(matches!(
            parse(&del).unwrap(),
            Message::Change(Change::Delete {
                old: (_, false),
                ..
            })
        ));

        let mut tr = vec![b'T'];
        tr.extend(2u32.to_be_bytes());
        tr.push(3);
        tr.extend(1u32.to_be_bytes());
        tr.extend(2u32.to_be_bytes());
        assert_eq!(
            parse(&tr).unwrap(),
            Message::Change(Change::Truncate {
                relations: vec![1, 2],
                cascade: true,
                restart_identity: true
            })
        );
        assert_eq!(parse(b"B\0\0").unwrap(), Message::Other);
    }

    #[test]
    fn every_cut_of_a_message_is_an_error_not_a_panic() {
        let mut ins = vec![b'I'];
        ins.extend(7u32.to_be_bytes());
        ins.push(b'N');
        ins.extend(tuple(&[Some("hello"), None, Some("x")]));
        for cut in 0..ins.len() {
            assert!(parse(&ins[..cut]).is_err(), "cut at {cut}");
        }
        // A length far past the message allocates nothing.
        let mut huge = vec![b'I'];
        huge.extend(7u32.to_be_bytes());
        huge.push(b'N');
        huge.extend(1u16.to_be_bytes());
        huge.push(b't');
        huge.extend(u32::MAX.to_be_bytes());
        assert!(parse(&huge).is_err());
    }
}
