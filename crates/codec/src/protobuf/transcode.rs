//! Wire bytes straight to canonical proto3 JSON, byte for byte what prost-reflect 0.16 prints
//! for `DynamicMessage::decode` + `serde_json::to_string`, without building the message.
//!
//! Each message is read in two steps. First its fields are scanned into a shared stack of
//! occurrences (field, wire value or byte range), checking everything decoding checks:
//! wire types, UTF-8, lengths, the recursion budget. Then the occurrences are printed in field
//! number order (a stable sort, needed only when the wire was not in order): a scalar's last
//! occurrence wins, a message's occurrences merge (its byte ranges are read as one message),
//! a repeated field takes every element, packed or not, and a oneof keeps only what came
//! after its last switch of member. What decoding would read but printing never shows (a
//! cleared oneof member, a map entry replaced by a later one with the same key) is still
//! checked, so a payload errors exactly when the general path errors.
//!
//! Map keys print sorted (bytes for strings, numerically for numbers): prost-reflect keeps
//! maps in a `HashMap`, so its order is arbitrary and differs from run to run.

use super::json;
use super::plan::{Card, Field, Msg, Plan, Scalar, Ty, Wkt, LEN, NO_ONEOF};
use super::wire::{self, fail, limit, unpack, TranscodeError, R};
use std::cmp::Ordering;

/// prost's recursion limit: the budget of a top-level decode.
pub(super) const RECURSION_LIMIT: u32 = 100;
/// Each `Any` payload decodes with a fresh budget; this bounds the stack across them.
const MAX_NESTING: u32 = 400;
const NO_WINNER: u32 = u32::MAX;

pub(super) type Span = (u32, u32);

/// One field occurrence on the wire: `val` is the varint or fixed value, or a packed span.
#[derive(Clone, Copy)]
pub(super) struct Occ {
    pub field: u32,
    pub wt: u8,
    /// Cleared by a later member of its oneof.
    pub dead: bool,
    pub val: u64,
}

impl Occ {
    pub(super) fn span(self) -> Span {
        let (s, e) = unpack(self.val);
        (s as u32, e as u32)
    }
}

/// The occurrences of one message being printed: `occ[base..]`, oneof state `oneof[obase..]`.
pub(super) struct Level {
    pub base: usize,
    obase: usize,
    sorted: bool,
    pub dead: bool,
    last: u32,
}

pub(super) struct Transcoder<'a> {
    pub input: &'a [u8],
    pub out: Vec<u8>,
    pub occ: Vec<Occ>,
    /// Per oneof of each open level: (member seen last, index of its first occurrence since).
    oneof: Vec<(u32, u32)>,
    nesting: u32,
}

/// The JSON text of one message of the plan's root type.
pub(super) fn transcode(plan: &Plan, input: &[u8]) -> R<String> {
    if input.len() > u32::MAX as usize {
        return Err(TranscodeError::Unsupported);
    }
    let mut t = Transcoder {
        input,
        out: Vec::with_capacity(input.len() * 2 + 16),
        occ: Vec::with_capacity(64),
        oneof: Vec::new(),
        nesting: 0,
    };
    t.message(
        plan,
        0,
        &[(0, input.len() as u32)],
        RECURSION_LIMIT,
        RECURSION_LIMIT,
    )?;
    String::from_utf8(t.out).map_err(|_| TranscodeError::Unsupported)
}

/// Byte ranges of one merged message; one range without allocating.
pub(super) enum Spans {
    One([Span; 1]),
    Many(Vec<Span>),
}

impl Spans {
    pub(super) fn as_slice(&self) -> &[Span] {
        match self {
            Spans::One(s) => s,
            Spans::Many(v) => v,
        }
    }
}

impl<'a> Transcoder<'a> {
    /// Prints message `mi` made of `spans`; `abs` is the recursion budget of its fields, `rel`
    /// their budget in the prost-types re-decode that well-known types go through.
    pub(super) fn message(
        &mut self,
        p: &Plan,
        mi: u32,
        spans: &[Span],
        abs: u32,
        rel: u32,
    ) -> R<()> {
        let msg = &p.msgs[mi as usize];
        let lv = self.open(msg, spans, abs, msg.wkt.transcoded().then_some(rel))?;
        self.check_dead(p, msg, &lv, abs)?;
        let top = self.occ.len();
        if msg.wkt == Wkt::None {
            self.out.push(b'{');
            self.fields(p, msg, lv.base, top, abs, false)?;
            self.out.push(b'}');
        } else {
            self.well_known(p, msg, lv.base, top, abs, rel)?;
        }
        self.close(&lv);
        Ok(())
    }

    /// Scans `spans` as one message and checks what a cleared oneof member held.
    pub(super) fn open(
        &mut self,
        msg: &Msg,
        spans: &[Span],
        abs: u32,
        rel: Option<u32>,
    ) -> R<Level> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return limit();
        }
        let mut lv = Level {
            base: self.occ.len(),
            obase: self.oneof.len(),
            sorted: true,
            dead: false,
            last: 0,
        };
        if msg.oneofs > 0 {
            self.oneof
                .resize(lv.obase + msg.oneofs as usize, (NO_WINNER, 0));
        }
        for &s in spans {
            self.scan(msg, s, abs, rel, &mut lv)?;
        }
        if !lv.sorted {
            self.occ[lv.base..].sort_by_key(|o| o.field);
        }
        Ok(lv)
    }

    pub(super) fn close(&mut self, lv: &Level) {
        self.occ.truncate(lv.base);
        self.oneof.truncate(lv.obase);
        self.nesting -= 1;
    }

    fn scan(&mut self, msg: &Msg, span: Span, abs: u32, rel: Option<u32>, lv: &mut Level) -> R<()> {
        let input = self.input;
        let mut pos = span.0 as usize;
        let end = span.1 as usize;
        while pos < end {
            let (tag, wt) = wire::key(input, &mut pos, end)?;
            let Some(fi) = msg.lookup(tag) else {
                let at = pos;
                pos = wire::skip(input, wt, tag, pos, end, abs, false)?;
                if let Some(r) = rel {
                    wire::skip(input, wt, tag, at, end, r, true)?;
                }
                continue;
            };
            let f = &msg.fields[fi];
            let val = match f.card {
                // prost-reflect reads a map entry's length whatever the wire type says.
                Card::Map { .. } => wire::delimited(input, &mut pos, end)?,
                Card::List if wt == LEN && f.ty.packable() => {
                    wire::delimited(input, &mut pos, end)?
                }
                _ => {
                    if wt != f.ty.wire() {
                        return fail("unexpected wire type");
                    }
                    let utf8 = f.ty == Ty::Scalar(Scalar::String);
                    wire::value(input, wt, utf8, &mut pos, end)?
                }
            };
            let fi = fi as u32;
            if f.oneof != NO_ONEOF {
                self.switch(msg, lv, f.oneof, fi);
            }
            if fi < lv.last {
                lv.sorted = false;
            }
            lv.last = fi;
            self.occ.push(Occ {
                field: fi,
                wt,
                dead: false,
                val,
            });
        }
        Ok(())
    }

    /// Setting a oneof member clears the others: what they had so far is dead.
    fn switch(&mut self, msg: &Msg, lv: &mut Level, oneof: u32, fi: u32) {
        let at = self.occ.len() as u32;
        let st = &mut self.oneof[lv.obase + oneof as usize];
        if st.0 == fi {
            return;
        }
        let (prev, since) = *st;
        *st = (fi, at);
        if prev == NO_WINNER {
            return;
        }
        for o in &mut self.occ[since as usize..] {
            if msg.fields[o.field as usize].oneof == oneof {
                o.dead = true;
                lv.dead = true;
            }
        }
    }

    /// Checks the messages held by cleared oneof members (scalars were checked when scanned).
    pub(super) fn check_dead(&mut self, p: &Plan, msg: &Msg, lv: &Level, abs: u32) -> R<()> {
        if !lv.dead {
            return Ok(());
        }
        for k in lv.base..self.occ.len() {
            let o = self.occ[k];
            if let (true, Ty::Message(c)) = (o.dead, msg.fields[o.field as usize].ty) {
                if abs == 0 {
                    return limit();
                }
                self.validate(p, c, &[o.span()], abs - 1)?;
            }
        }
        Ok(())
    }

    /// Decodes message `mi` without printing it.
    pub(super) fn validate(&mut self, p: &Plan, mi: u32, spans: &[Span], abs: u32) -> R<()> {
        let msg = &p.msgs[mi as usize];
        let lv = self.open(msg, spans, abs, None)?;
        for k in lv.base..self.occ.len() {
            let o = self.occ[k];
            let f = &msg.fields[o.field as usize];
            match (f.card, f.ty) {
                (Card::Map { key, value }, _) => {
                    let e = self.entry(key, value, o.span(), abs)?;
                    if let (Ty::Message(c), true) = (value, e.values > 0) {
                        let spans = self.value_spans(&e);
                        self.validate(p, c, spans.as_slice(), abs - 1)?;
                    }
                }
                (_, Ty::Message(c)) => {
                    if abs == 0 {
                        return limit();
                    }
                    self.validate(p, c, &[o.span()], abs - 1)?;
                }
                (Card::List, ty) if o.wt == LEN && ty.packable() => {
                    self.packed(p, ty, o.span(), false, 0)?;
                }
                _ => {}
            }
        }
        self.close(&lv);
        Ok(())
    }

    /// Prints the fields in `occ[base..top]` as `"key":value` members, each after a comma
    /// when `comma` (something came before).
    pub(super) fn fields(
        &mut self,
        p: &Plan,
        msg: &Msg,
        base: usize,
        top: usize,
        abs: u32,
        mut comma: bool,
    ) -> R<()> {
        let mut i = base;
        while i < top {
            let fi = self.occ[i].field;
            let mut j = i + 1;
            while j < top && self.occ[j].field == fi {
                j += 1;
            }
            let f = &msg.fields[fi as usize];
            match f.card {
                Card::Single { presence } => match f.ty {
                    Ty::Message(c) => {
                        let spans = self.live_spans(i, j);
                        if !spans.as_slice().is_empty() {
                            if abs == 0 {
                                return limit();
                            }
                            self.key(f, &mut comma);
                            self.message(p, c, spans.as_slice(), abs - 1, RECURSION_LIMIT)?;
                        }
                    }
                    ty => {
                        if let Some(o) = self.last_live(i, j) {
                            if presence || !is_default(p, ty, o) {
                                self.key(f, &mut comma);
                                self.scalar(p, ty, o);
                            }
                        }
                    }
                },
                Card::List => {
                    let (mark, had) = (self.out.len(), comma);
                    self.key(f, &mut comma);
                    self.out.push(b'[');
                    if self.items(p, f.ty, i, j, abs, None)? == 0 {
                        // Only empty packed runs: an empty list, which is not printed.
                        self.out.truncate(mark);
                        comma = had;
                    } else {
                        self.out.push(b']');
                    }
                }
                Card::Map { key, value } => {
                    self.key(f, &mut comma);
                    self.map(p, key, value, i, j, abs, None)?;
                }
            }
            i = j;
        }
        Ok(())
    }

    #[inline]
    fn key(&mut self, f: &Field, comma: &mut bool) {
        if *comma {
            self.out.push(b',');
        }
        *comma = true;
        self.out.extend_from_slice(&f.key);
    }

    pub(super) fn last_live(&self, i: usize, j: usize) -> Option<Occ> {
        self.occ[i..j].iter().rev().find(|o| !o.dead).copied()
    }

    pub(super) fn live_spans(&self, i: usize, j: usize) -> Spans {
        let mut live = self.occ[i..j].iter().filter(|o| !o.dead);
        match (live.next(), live.next()) {
            (None, _) => Spans::Many(Vec::new()),
            (Some(o), None) => Spans::One([o.span()]),
            _ => Spans::Many(
                self.occ[i..j]
                    .iter()
                    .filter(|o| !o.dead)
                    .map(|o| o.span())
                    .collect(),
            ),
        }
    }

    /// The elements of a repeated field, comma-separated; returns how many. `rel` is the
    /// prost-types budget when printing a `ListValue`'s values.
    pub(super) fn items(
        &mut self,
        p: &Plan,
        ty: Ty,
        i: usize,
        j: usize,
        abs: u32,
        rel: Option<u32>,
    ) -> R<usize> {
        let mut n = 0;
        for k in i..j {
            let o = self.occ[k];
            match ty {
                Ty::Message(c) => {
                    if abs == 0 {
                        return limit();
                    }
                    let child_rel = match rel {
                        None => RECURSION_LIMIT,
                        Some(0) => return limit(),
                        Some(r) => r - 1,
                    };
                    if n > 0 {
                        self.out.push(b',');
                    }
                    n += 1;
                    self.message(p, c, &[o.span()], abs - 1, child_rel)?;
                }
                _ if o.wt == LEN && ty.packable() => n = self.packed(p, ty, o.span(), true, n)?,
                _ => {
                    if n > 0 {
                        self.out.push(b',');
                    }
                    n += 1;
                    self.scalar(p, ty, o);
                }
            }
        }
        Ok(n)
    }

    /// The elements of one packed run, printed when `write`; `n` counts what came before.
    fn packed(&mut self, p: &Plan, ty: Ty, span: Span, write: bool, mut n: usize) -> R<usize> {
        let input = self.input;
        let (mut pos, end) = (span.0 as usize, span.1 as usize);
        let wt = ty.wire();
        while pos < end {
            let val = wire::value(input, wt, false, &mut pos, end)?;
            if write {
                if n > 0 {
                    self.out.push(b',');
                }
                let o = Occ {
                    field: 0,
                    wt,
                    dead: false,
                    val,
                };
                self.scalar(p, ty, o);
            }
            n += 1;
        }
        Ok(n)
    }

    /// A scalar or enum value.
    pub(super) fn scalar(&mut self, p: &Plan, ty: Ty, o: Occ) {
        let out = &mut self.out;
        let v = o.val;
        match ty {
            Ty::Enum(e) => {
                let t = &p.enums[e as usize];
                if t.null {
                    out.extend_from_slice(b"null");
                } else if let Some(name) = t.name(v as i32) {
                    out.extend_from_slice(name);
                } else {
                    json::int(out, v as i32);
                }
            }
            Ty::Scalar(s) => match s {
                Scalar::Double => json::f64(out, f64::from_bits(v)),
                Scalar::Float => json::f32(out, f32::from_bits(v as u32)),
                Scalar::Int32 | Scalar::Sfixed32 => json::int(out, v as u32 as i32),
                Scalar::Uint32 | Scalar::Fixed32 => json::int(out, v as u32),
                Scalar::Sint32 => json::int(out, wire::zigzag32(v as u32)),
                Scalar::Int64 | Scalar::Sfixed64 => json::quoted_int(out, v as i64),
                Scalar::Uint64 | Scalar::Fixed64 => json::quoted_int(out, v),
                Scalar::Sint64 => json::quoted_int(out, wire::zigzag64(v)),
                Scalar::Bool => json::bool(out, v != 0),
                Scalar::String => {
                    let (s, e) = unpack(v);
                    json::string(out, &self.input[s..e]);
                }
                Scalar::Bytes => {
                    let (s, e) = unpack(v);
                    json::bytes(out, &self.input[s..e]);
                }
            },
            Ty::Message(_) => unreachable!("messages are printed by `message`"),
        }
    }

    /// A map field's object; `struct_rel` is the prost-types budget of a `Struct`'s fields.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn map(
        &mut self,
        p: &Plan,
        key: Scalar,
        value: Ty,
        i: usize,
        j: usize,
        abs: u32,
        struct_rel: Option<u32>,
    ) -> R<()> {
        let mut entries = Vec::with_capacity(j - i);
        for k in i..j {
            let span = self.occ[k].span();
            entries.push(self.entry(key, value, span, abs)?);
        }
        let input = self.input;
        entries.sort_by(|a, b| cmp_keys(input, a.key, b.key));
        self.out.push(b'{');
        let mut first = true;
        for x in 0..entries.len() {
            let e = &entries[x];
            let replaced = entries
                .get(x + 1)
                .is_some_and(|n| cmp_keys(input, e.key, n.key) == Ordering::Equal);
            if replaced {
                // A later entry with the same key replaces this one, which was still decoded.
                if let (Ty::Message(c), true) = (value, e.values > 0) {
                    let spans = self.value_spans(e);
                    self.validate(p, c, spans.as_slice(), abs - 1)?;
                }
                continue;
            }
            if !first {
                self.out.push(b',');
            }
            first = false;
            self.map_key(e.key);
            self.out.push(b':');
            match value {
                Ty::Message(c) => {
                    let child_rel = match struct_rel {
                        None => RECURSION_LIMIT,
                        // prost-types spends one level on the entry and one on the value.
                        Some(r) if r < 2 => return limit(),
                        Some(r) => r - 2,
                    };
                    let spans = self.value_spans(e);
                    self.message(p, c, spans.as_slice(), abs.saturating_sub(1), child_rel)?;
                }
                ty => {
                    let o = e.value.unwrap_or(Occ {
                        field: 0,
                        wt: ty.wire(),
                        dead: false,
                        val: match ty {
                            Ty::Enum(x) => p.enums[x as usize].default as u32 as u64,
                            _ => 0,
                        },
                    });
                    self.scalar(p, ty, o);
                }
            }
        }
        self.out.push(b'}');
        Ok(())
    }

    /// Decodes one map entry as prost-reflect does: key and value default when missing, the
    /// last of each wins (message values merge), other fields skipped through `skip_field`.
    fn entry(&self, key: Scalar, value: Ty, span: Span, abs: u32) -> R<Entry> {
        let input = self.input;
        let (mut pos, end) = (span.0 as usize, span.1 as usize);
        let mut e = Entry {
            key: match key {
                Scalar::String => Key::S(0, 0),
                Scalar::Bool => Key::B(false),
                Scalar::Uint32 | Scalar::Uint64 | Scalar::Fixed32 | Scalar::Fixed64 => Key::U(0),
                _ => Key::I(0),
            },
            value: None,
            values: 0,
            span,
        };
        while pos < end {
            let (tag, wt) = wire::key(input, &mut pos, end)?;
            match tag {
                1 => {
                    if wt != key.wire() {
                        return fail("unexpected wire type");
                    }
                    let v = wire::value(input, wt, key == Scalar::String, &mut pos, end)?;
                    e.key = to_key(key, v);
                }
                2 => {
                    if wt != value.wire() {
                        return fail("unexpected wire type");
                    }
                    if matches!(value, Ty::Message(_)) && abs == 0 {
                        return limit();
                    }
                    let utf8 = value == Ty::Scalar(Scalar::String);
                    let val = wire::value(input, wt, utf8, &mut pos, end)?;
                    e.value = Some(Occ {
                        field: 0,
                        wt,
                        dead: false,
                        val,
                    });
                    e.values += 1;
                }
                _ => pos = wire::skip(input, wt, tag, pos, end, abs, true)?,
            }
        }
        Ok(e)
    }

    /// The byte ranges of an entry's message value (all of them when it came more than once).
    fn value_spans(&self, e: &Entry) -> Spans {
        match (e.values, e.value) {
            (1, Some(o)) => Spans::One([o.span()]),
            (0, _) | (_, None) => Spans::Many(Vec::new()),
            _ => {
                let input = self.input;
                let (mut pos, end) = (e.span.0 as usize, e.span.1 as usize);
                let mut spans = Vec::new();
                // Already checked once by `entry`, budget included, so none of this fails;
                // other fields (unknown groups among them) are skipped as `entry` skipped them.
                while let Ok((tag, wt)) = wire::key(input, &mut pos, end) {
                    if tag == 2 && wt == LEN {
                        let Ok(v) = wire::value(input, wt, false, &mut pos, end) else {
                            break;
                        };
                        let (s, e) = unpack(v);
                        spans.push((s as u32, e as u32));
                    } else {
                        match wire::skip(input, wt, tag, pos, end, u32::MAX, false) {
                            Ok(next) => pos = next,
                            Err(_) => break,
                        }
                    }
                }
                Spans::Many(spans)
            }
        }
    }

    fn map_key(&mut self, k: Key) {
        let out = &mut self.out;
        match k {
            Key::S(s, e) => json::string(out, &self.input[s as usize..e as usize]),
            Key::I(v) => json::quoted_int(out, v),
            Key::U(v) => json::quoted_int(out, v),
            Key::B(b) => out.extend_from_slice(if b { b"\"true\"" } else { b"\"false\"" }),
        }
    }
}

struct Entry {
    key: Key,
    value: Option<Occ>,
    values: u32,
    span: Span,
}

#[derive(Clone, Copy)]
enum Key {
    I(i64),
    U(u64),
    B(bool),
    S(u32, u32),
}

fn to_key(key: Scalar, v: u64) -> Key {
    match key {
        Scalar::Int32 | Scalar::Sfixed32 => Key::I(i64::from(v as u32 as i32)),
        Scalar::Sint32 => Key::I(i64::from(wire::zigzag32(v as u32))),
        Scalar::Int64 | Scalar::Sfixed64 => Key::I(v as i64),
        Scalar::Sint64 => Key::I(wire::zigzag64(v)),
        Scalar::Uint32 | Scalar::Fixed32 => Key::U(u64::from(v as u32)),
        Scalar::Bool => Key::B(v != 0),
        Scalar::String => {
            let (s, e) = unpack(v);
            Key::S(s as u32, e as u32)
        }
        _ => Key::U(v),
    }
}

fn cmp_keys(input: &[u8], a: Key, b: Key) -> Ordering {
    match (a, b) {
        (Key::I(a), Key::I(b)) => a.cmp(&b),
        (Key::U(a), Key::U(b)) => a.cmp(&b),
        (Key::B(a), Key::B(b)) => a.cmp(&b),
        (Key::S(a0, a1), Key::S(b0, b1)) => {
            input[a0 as usize..a1 as usize].cmp(&input[b0 as usize..b1 as usize])
        }
        _ => Ordering::Equal,
    }
}

/// Whether a field without presence holds its default (and so is not printed).
fn is_default(p: &Plan, ty: Ty, o: Occ) -> bool {
    let v = o.val;
    match ty {
        Ty::Enum(e) => v as i32 == p.enums[e as usize].default,
        Ty::Scalar(s) => match s {
            // -0.0 == 0.0, and NaN is not its own default: as prost-reflect compares.
            Scalar::Double => f64::from_bits(v) == 0.0,
            Scalar::Float => f32::from_bits(v as u32) == 0.0,
            Scalar::Int32
            | Scalar::Uint32
            | Scalar::Sint32
            | Scalar::Fixed32
            | Scalar::Sfixed32 => v as u32 == 0,
            Scalar::String | Scalar::Bytes => {
                let (s, e) = unpack(v);
                s == e
            }
            _ => v == 0,
        },
        Ty::Message(_) => false,
    }
}
