//! Recursive-descent parser: `or` binds loosest, then `and` (also implied between adjacent
//! terms, so `payment declined` means both words), then `not`.
//!
//! Everything that later walks an `Expr` (the SQL compiler, `needs`, `Drop`, `Clone`) recurses,
//! so the tree's depth is bounded here: chains of `and`/`or` become one flat list instead of a
//! nested pair per term, and only `(` and `not` add a level, at most [`MAX_DEPTH`] of them. A
//! filter of 2,100 nested parentheses used to overflow a 2 MiB tokio worker stack.

use crate::lexer::{lex, Tok, Token};
use crate::FilterError;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// All of two or more terms, none of them itself an `And`.
    And(Vec<Expr>),
    /// Any of two or more terms, none of them itself an `Or`.
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// Case-insensitive substring anywhere in the decoded or text payload.
    Text(String),
    Compare(Comparison),
    Exists(Field),
    /// Events at or after this time (microseconds).
    After(i64),
    /// Events before this time (microseconds).
    Before(i64),
    /// Events within this many microseconds before now.
    Last(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub field: Field,
    pub op: Op,
    /// One value, or several for `in`.
    pub values: Vec<Value>,
    pub column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `~`: regular expression (a plain word is a substring match).
    Match,
    In,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    Id,
    Bus,
    Connection,
    Source,
    Partition,
    Offset,
    /// The second number of a two-part position (a Redis entry id's sequence).
    SubOffset,
    Key,
    Header(String),
    /// A bus property kept in the event's `properties` object: AMQP's routing key, exchange,
    /// message properties; SQS's system attributes.
    Property(String),
    Timestamp,
    Size,
    Schema,
    Encoding,
    DecodeError,
    Decoded(Vec<PathSegment>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
}

/// Longest filter accepted, in bytes. A filter bar query is a line; the longest filter Sluice
/// builds itself is an `event.id in (...)` list of checked rows, about 45 bytes per event.
pub const MAX_FILTER_BYTES: usize = 64 * 1024;

/// Deepest nesting of `(` groups and `not`s accepted.
pub const MAX_DEPTH: usize = 64;

/// Most search terms, comparisons, time bounds and `in` values in one filter. A search costs
/// about one substring scan per term and row (4,096 free-text terms took 58 s of CPU over
/// 20,000 events), so this bounds how much one filter can multiply a search's work.
pub const MAX_TERMS: usize = 1024;

pub fn parse(input: &str) -> Result<Option<Expr>, FilterError> {
    if input.len() > MAX_FILTER_BYTES {
        let column = input
            .char_indices()
            .take_while(|(i, _)| *i < MAX_FILTER_BYTES)
            .count()
            + 1;
        return Err(FilterError::at(
            column,
            format!(
                "filter is longer than {} KiB ({} bytes)",
                MAX_FILTER_BYTES / 1024,
                input.len()
            ),
        ));
    }
    let tokens = lex(input)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        tokens,
        pos: 0,
        end: input.chars().count() + 1,
        depth: 0,
        terms: 0,
    };
    let expr = p.or()?;
    if let Some(t) = p.peek() {
        let what = if t.tok == Tok::RParen {
            "`)` without a matching `(`"
        } else {
            "unexpected token"
        };
        return Err(FilterError::at(
            t.column,
            format!("{what}: expected `and`, `or` or end of filter"),
        ));
    }
    Ok(Some(expr))
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    end: usize,
    /// `(` groups and `not`s open around the current position.
    depth: usize,
    /// Leaf terms (and `in` values) parsed so far.
    terms: usize,
}

/// Joins `parts` into one `And` (or `Or`, per `or`), lifting the parts of any child of the
/// same kind so `(a and b) and c` is one list of three.
fn flat(parts: Vec<Expr>, or: bool) -> Expr {
    if parts.len() == 1 {
        return parts.into_iter().next().expect("one part");
    }
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Expr::And(inner) if !or => out.extend(inner),
            Expr::Or(inner) if or => out.extend(inner),
            part => out.push(part),
        }
    }
    if or {
        Expr::Or(out)
    } else {
        Expr::And(out)
    }
}

fn is_kw(t: &Token, kw: &str) -> bool {
    matches!(&t.tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn column(&self) -> usize {
        self.peek().map(|t| t.column).unwrap_or(self.end)
    }

    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut parts = vec![self.and()?];
        while self.peek().is_some_and(|t| is_kw(t, "or")) {
            self.pos += 1;
            parts.push(self.and()?);
        }
        Ok(flat(parts, true))
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut parts = vec![self.unary()?];
        loop {
            match self.peek() {
                Some(t) if is_kw(t, "and") => self.pos += 1,
                Some(t) if is_kw(t, "or") || t.tok == Tok::RParen => break,
                Some(_) => {}
                None => break,
            }
            parts.push(self.unary()?);
        }
        Ok(flat(parts, false))
    }

    /// Enters one `(` or `not` level opened at `column`; the caller calls `leave` after it.
    fn enter(&mut self, column: usize, what: &str) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::at(
                column,
                format!(
                    "this {what} nests too deep: at most {MAX_DEPTH} levels of `(` and `not` \
                     are allowed"
                ),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Counts one more leaf term starting at `column` (`n` for an `in` list of `n` values).
    fn count_terms(&mut self, column: usize, n: usize) -> Result<(), FilterError> {
        self.terms += n;
        if self.terms > MAX_TERMS {
            return Err(FilterError::at(
                column,
                format!("filter has more than {MAX_TERMS} terms"),
            ));
        }
        Ok(())
    }

    // `or`, `and`, `unary` and nothing else recurse, and they keep their frames small (error
    // texts are built in other functions): in a debug build 64 levels fit in a 256 KiB stack.
    fn unary(&mut self) -> Result<Expr, FilterError> {
        let column = self.column();
        let group = match self.peek() {
            Some(t) if is_kw(t, "not") => false,
            Some(t) if t.tok == Tok::LParen => true,
            _ => return self.primary(),
        };
        self.pos += 1;
        self.enter(column, if group { "`(`" } else { "`not`" })?;
        let inner = if group { self.or() } else { self.unary() };
        self.leave();
        let inner = inner?;
        if !group {
            return Ok(Expr::Not(Box::new(inner)));
        }
        match self.peek() {
            Some(t) if t.tok == Tok::RParen => {
                self.pos += 1;
                Ok(inner)
            }
            _ => Err(self.unclosed(column)),
        }
    }

    #[cold]
    #[inline(never)]
    fn unclosed(&self, open: usize) -> FilterError {
        FilterError::at(
            self.column(),
            format!("expected `)` to close the `(` at column {open}"),
        )
    }

    /// A search term or comparison (`unary` takes `not` and `(` first).
    fn primary(&mut self) -> Result<Expr, FilterError> {
        let column = self.column();
        let Some(t) = self.next() else {
            return Err(FilterError::at(
                column,
                "expected a search term, a comparison like `field = value`, or `(`",
            ));
        };
        match t.tok {
            Tok::Str(s) => {
                self.count_terms(column, 1)?;
                Ok(Expr::Text(s))
            }
            Tok::Word(w) => {
                let e = self.word(w, column)?;
                let n = match &e {
                    Expr::Compare(c) => c.values.len(),
                    _ => 1,
                };
                self.count_terms(column, n)?;
                Ok(e)
            }
            Tok::RParen => Err(FilterError::at(
                column,
                "unexpected `)`: expected a search term or comparison",
            )),
            Tok::LParen => Err(FilterError::at(column, "unexpected `(`")),
            Tok::Comma => Err(FilterError::at(
                column,
                "unexpected `,` outside an `in (...)` list",
            )),
            Tok::Op(op) => Err(FilterError::at(
                column,
                format!("expected a field name before `{op}`"),
            )),
        }
    }

    /// Column just after the last consumed token, for "expected X here" messages at the end.
    fn column_before(&self) -> usize {
        self.tokens
            .get(self.pos.saturating_sub(1))
            .map(|t| t.column)
            .unwrap_or(self.end)
            .min(self.end)
    }

    fn word(&mut self, w: String, column: usize) -> Result<Expr, FilterError> {
        let lower = w.to_ascii_lowercase();
        for (prefix, kind) in [("after:", 0), ("before:", 1), ("last:", 2)] {
            if let Some(rest) = lower.strip_prefix(prefix) {
                let raw = if rest.is_empty() {
                    match self.next() {
                        Some(Token {
                            tok: Tok::Str(s) | Tok::Word(s),
                            ..
                        }) => s,
                        _ => {
                            return Err(FilterError::at(
                                column + prefix.len(),
                                format!("expected a value after `{prefix}`"),
                            ))
                        }
                    }
                } else {
                    w[prefix.len()..].to_string()
                };
                let vcol = column + prefix.len();
                return match kind {
                    0 => Ok(Expr::After(parse_time(&raw, vcol)?)),
                    1 => Ok(Expr::Before(parse_time(&raw, vcol)?)),
                    _ => humantime::parse_duration(&raw)
                        .map(|d| Expr::Last(d.as_micros().min(i64::MAX as u128) as i64))
                        .map_err(|e| {
                            FilterError::at(
                                vcol,
                                format!("expected a duration like 15m, 2h or 7d: {e}"),
                            )
                        }),
                };
            }
        }
        if lower == "exists" && self.peek().is_some_and(|t| t.tok == Tok::LParen) {
            self.pos += 1;
            let fcol = self.column();
            let field = match self.next() {
                Some(Token {
                    tok: Tok::Word(f), ..
                }) => parse_field(&f, fcol)?,
                _ => {
                    return Err(FilterError::at(
                        fcol,
                        "expected a field name inside `exists(...)`",
                    ))
                }
            };
            return match self.next() {
                Some(Token {
                    tok: Tok::RParen, ..
                }) => Ok(Expr::Exists(field)),
                _ => Err(FilterError::at(
                    self.column_before(),
                    "expected `)` after the field name",
                )),
            };
        }
        match self.peek().map(|t| t.tok.clone()) {
            Some(Tok::Op(op)) => {
                self.pos += 1;
                let field = parse_field(&w, column)?;
                let op = match op {
                    "=" => Op::Eq,
                    "!=" => Op::Ne,
                    "<" => Op::Lt,
                    "<=" => Op::Le,
                    ">" => Op::Gt,
                    ">=" => Op::Ge,
                    _ => Op::Match,
                };
                let value = self.value(&format!("after `{}`", op_text(op)))?;
                if op == Op::Match {
                    if let Value::Str(re) = &value {
                        if let Err(e) = regex::Regex::new(re) {
                            return Err(FilterError::at(
                                column,
                                format!("invalid regular expression: {e}"),
                            ));
                        }
                    }
                }
                Ok(Expr::Compare(Comparison {
                    field,
                    op,
                    values: vec![value],
                    column,
                }))
            }
            Some(Tok::Word(next)) if next.eq_ignore_ascii_case("in") => {
                self.pos += 1;
                let field = parse_field(&w, column)?;
                let lcol = self.column();
                if !matches!(
                    self.next(),
                    Some(Token {
                        tok: Tok::LParen,
                        ..
                    })
                ) {
                    return Err(FilterError::at(lcol, "expected `(` after `in`"));
                }
                let mut values = vec![self.value("in the `in (...)` list")?];
                loop {
                    let ccol = self.column();
                    match self.next() {
                        Some(Token {
                            tok: Tok::Comma, ..
                        }) => values.push(self.value("after `,`")?),
                        Some(Token {
                            tok: Tok::RParen, ..
                        }) => break,
                        _ => {
                            return Err(FilterError::at(
                                ccol,
                                "expected `,` or `)` in the `in (...)` list",
                            ))
                        }
                    }
                }
                Ok(Expr::Compare(Comparison {
                    field,
                    op: Op::In,
                    values,
                    column,
                }))
            }
            Some(Tok::Word(next)) if next.eq_ignore_ascii_case("exists") => {
                self.pos += 1;
                Ok(Expr::Exists(parse_field(&w, column)?))
            }
            _ => Ok(Expr::Text(w)),
        }
    }

    fn value(&mut self, context: &str) -> Result<Value, FilterError> {
        let column = self.column();
        match self.next() {
            Some(Token {
                tok: Tok::Str(s), ..
            }) => Ok(Value::Str(s)),
            Some(Token {
                tok: Tok::Word(w), ..
            }) => bare_value(w, column),
            _ => Err(FilterError::at(
                column,
                format!("expected a value {context}"),
            )),
        }
    }
}

fn op_text(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "!=",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Match => "~",
        Op::In => "in",
    }
}

/// A bare word as a value: `true`/`false`, a number, or else text. A number a 64-bit float
/// cannot hold (`1e309`, `1e-400`) is an error rather than quietly becoming the text "1e309" or
/// the number 0: quoting it is how to compare it as text.
fn bare_value(w: String, column: usize) -> Result<Value, FilterError> {
    if w.eq_ignore_ascii_case("true") {
        return Ok(Value::Bool(true));
    }
    if w.eq_ignore_ascii_case("false") {
        return Ok(Value::Bool(false));
    }
    let Ok(n) = w.parse::<f64>() else {
        return Ok(Value::Str(w));
    };
    // `inf`, `infinity` and `nan` parse as floats but are words people search for.
    if !w.bytes().any(|b| b.is_ascii_digit()) {
        return Ok(Value::Str(w));
    }
    let mantissa = w.split(['e', 'E']).next().unwrap_or("");
    let underflow = n == 0.0 && mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b));
    if !n.is_finite() || underflow {
        return Err(FilterError::at(
            column,
            format!(
                "the number {w} is outside the range of a 64-bit float (about 5e-324 to \
                 1.8e308); quote it to compare it as text"
            ),
        ));
    }
    Ok(Value::Num(n))
}

fn parse_time(raw: &str, column: usize) -> Result<i64, FilterError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(raw) {
        return Ok(t.timestamp_micros());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_micros());
    }
    Err(FilterError::at(
        column,
        format!("expected a time like 2026-11-20T10:00:00Z or 2026-11-20, found {raw:?}"),
    ))
}

/// Metadata reachable as `event.NAME`.
fn metadata(name: &str) -> Option<Field> {
    Some(match name {
        "id" => Field::Id,
        "bus" => Field::Bus,
        "connection" => Field::Connection,
        "source" | "topic" => Field::Source,
        "partition" => Field::Partition,
        "offset" => Field::Offset,
        "sub_offset" => Field::SubOffset,
        "key" => Field::Key,
        "timestamp" | "time" => Field::Timestamp,
        "size" => Field::Size,
        "schema" => Field::Schema,
        "encoding" => Field::Encoding,
        "decode_error" => Field::DecodeError,
        "routing_key" => Field::Property("routing_key".into()),
        "exchange" => Field::Property("exchange".into()),
        _ => return None,
    })
}

/// Resolves a field name: `event.NAME` for any metadata, the bare metadata names people use
/// most (`source`/`topic`, `connection`, `partition`, `offset`, `sub_offset`, `key`, `schema`,
/// `decode_error`, `routing_key`), `header.NAME`, `property.NAME`, and otherwise (or after an explicit `decoded.`) a path into
/// the decoded payload. Names such as `id`, `size` or `timestamp` are left to the payload,
/// where they are common.
fn parse_field(word: &str, column: usize) -> Result<Field, FilterError> {
    let lower = word.to_ascii_lowercase();
    if let Some(name) = lower.strip_prefix("event.") {
        return metadata(name).ok_or_else(|| {
            FilterError::at(
                column + "event.".len(),
                format!(
                    "unknown event field {name:?}: use id, bus, connection, source, partition, \
                     offset, sub_offset, key, timestamp, size, schema, encoding, decode_error, \
                     routing_key or exchange"
                ),
            )
        });
    }
    if matches!(
        lower.as_str(),
        "source"
            | "topic"
            | "connection"
            | "partition"
            | "offset"
            | "sub_offset"
            | "key"
            | "schema"
            | "decode_error"
            | "routing_key"
    ) {
        return Ok(metadata(&lower).expect("listed above"));
    }
    for prefix in ["property.", "properties."] {
        if lower.starts_with(prefix) {
            let name = &word[prefix.len()..];
            if name.is_empty() {
                return Err(FilterError::at(
                    column + prefix.len(),
                    "expected a property name after `property.`",
                ));
            }
            return Ok(Field::Property(name.to_string()));
        }
    }
    for prefix in ["header.", "headers."] {
        if lower.starts_with(prefix) {
            let name = &word[prefix.len()..];
            if name.is_empty() {
                return Err(FilterError::at(
                    column + prefix.len(),
                    "expected a header name after `header.`",
                ));
            }
            return Ok(Field::Header(name.to_string()));
        }
    }
    let path = if lower.starts_with("decoded.") {
        &word["decoded.".len()..]
    } else {
        word
    };
    let offset = word.len() - path.len();
    Ok(Field::Decoded(parse_path(path, column + offset)?))
}

fn parse_path(path: &str, column: usize) -> Result<Vec<PathSegment>, FilterError> {
    let mut segments = Vec::new();
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    let mut name = String::new();
    let flush = |name: &mut String,
                 segments: &mut Vec<PathSegment>,
                 at: usize|
     -> Result<(), FilterError> {
        if name.is_empty() {
            return Err(FilterError::at(at, "expected a field name in the path"));
        }
        segments.push(PathSegment::Key(std::mem::take(name)));
        Ok(())
    };
    while i < chars.len() {
        match chars[i] {
            '.' => {
                if !matches!(segments.last(), Some(PathSegment::Index(_))) || !name.is_empty() {
                    flush(&mut name, &mut segments, column + i)?;
                }
                i += 1;
            }
            '[' => {
                if !name.is_empty() {
                    flush(&mut name, &mut segments, column + i)?;
                }
                let close = chars[i..].iter().position(|&c| c == ']').map(|p| p + i);
                let Some(close) = close else {
                    return Err(FilterError::at(
                        column + i,
                        "expected `]` to close the index",
                    ));
                };
                let idx: String = chars[i + 1..close].iter().collect();
                let n = idx.parse::<usize>().map_err(|_| {
                    FilterError::at(column + i + 1, "expected a whole number index like [0]")
                })?;
                segments.push(PathSegment::Index(n));
                i = close + 1;
            }
            ']' => return Err(FilterError::at(column + i, "unexpected `]`")),
            '"' | '$' | '\\' | '*' => {
                return Err(FilterError::at(
                    column + i,
                    format!("`{}` is not allowed in a field path", chars[i]),
                ))
            }
            c => {
                name.push(c);
                i += 1;
            }
        }
    }
    if !name.is_empty() || segments.is_empty() {
        flush(&mut name, &mut segments, column + i)?;
    }
    Ok(segments)
}
