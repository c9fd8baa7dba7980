//! Compiles a parsed filter to a DuckDB `WHERE` clause over the `events` view. Columns and
//! operators come only from the match arms below; everything the user typed is a `?` parameter.

use crate::needs::{needs, Needs};
use crate::parser::{Comparison, Expr, Field, Op, PathSegment, Value};
use crate::FilterError;

/// The SQL function free text compiles to: `ICONTAINS(text, needle)` is true when `text`
/// contains `needle` with letters compared case-insensitively (Unicode simple case folding).
/// DuckDB has no such function; whoever runs compiled filters registers it (sluice-lake does).
pub const ICONTAINS: &str = "sluice_icontains";

/// A value bound to one `?` placeholder, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Text(String),
    Int(i64),
    Float(f64),
    Blob(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Compiled {
    /// A boolean SQL expression; `TRUE` for an empty filter.
    pub where_sql: String,
    pub params: Vec<Param>,
    /// What every match must have, for skipping files that cannot hold one.
    pub needs: Needs,
}

/// Most event ids one selection may name: the rows a user ticks, well past what a window
/// shows at once, and a bound on the SQL a request can make the server build.
pub const MAX_IDS: usize = 100_000;

impl Compiled {
    /// Narrows the filter to these event ids (the rows a user ticked). Unlike an `event.id in
    /// (...)` filter, which the parser caps at [`MAX_TERMS`](crate::MAX_TERMS) terms, the ids
    /// are bound as parameters of one SQL `IN` list, so nothing walks them recursively.
    /// Callers keep `ids` within [`MAX_IDS`].
    pub fn only_ids(mut self, ids: &[String]) -> Self {
        if ids.is_empty() {
            return self;
        }
        let mut list = String::with_capacity(ids.len() * 3);
        for (i, id) in ids.iter().enumerate() {
            list.push_str(if i == 0 { "?" } else { ", ?" });
            self.params.push(Param::Text(id.clone()));
        }
        self.where_sql = format!("({}) AND id IN ({list})", self.where_sql);
        self
    }
}

pub fn compile(expr: Option<&Expr>, now_us: i64) -> Result<Compiled, FilterError> {
    let mut c = Compiler {
        params: Vec::new(),
        now_us,
    };
    let where_sql = match expr {
        Some(e) => c.expr(e)?,
        None => "TRUE".to_string(),
    };
    Ok(Compiled {
        where_sql,
        params: c.params,
        needs: needs(expr, now_us),
    })
}

struct Compiler {
    params: Vec<Param>,
    now_us: i64,
}

/// The SQL text a metadata field maps to, and how its values compare.
enum Column {
    Text(&'static str),
    Number(&'static str),
}

fn json_path(path: &[PathSegment]) -> String {
    let mut s = String::from("$");
    for seg in path {
        match seg {
            PathSegment::Key(k) => {
                s.push_str(".\"");
                s.push_str(k);
                s.push('"');
            }
            PathSegment::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Num(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
    }
}

/// Text that must occur in canonical JSON holding a field equal to `v`, when one is certain:
/// strings as JSON-escaped (without quotes, so a number field stored as `42` still matches
/// `"42"`), whole numbers as digits (`42` also matches `"42"` and `42.0`), booleans as words.
pub(crate) fn equality_needle(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) if !s.is_empty() => {
            let quoted = serde_json::to_string(s).ok()?;
            Some(quoted[1..quoted.len() - 1].to_string())
        }
        Value::Num(n) if n.fract() == 0.0 && n.abs() < 1.0e15 => Some(format!("{}", *n as i64)),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A missing field makes a comparison NULL; `not` should then match, not drop the row.
fn negate(sql: &str) -> String {
    format!("(NOT coalesce({sql}, FALSE))")
}

fn sql_op(op: Op) -> &'static str {
    match op {
        Op::Eq => "=",
        Op::Ne => "IS DISTINCT FROM",
        Op::Lt => "<",
        Op::Le => "<=",
        Op::Gt => ">",
        Op::Ge => ">=",
        Op::Match | Op::In => unreachable!("handled by the caller"),
    }
}

impl Compiler {
    fn bind(&mut self, p: Param) -> &'static str {
        self.params.push(p);
        "?"
    }

    /// `(p1 SEP p2 SEP ...)`: one flat SQL list, so a long chain adds no nesting for DuckDB.
    fn join(&mut self, parts: &[Expr], sep: &str) -> Result<String, FilterError> {
        let mut sql = String::from("(");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                sql.push_str(sep);
            }
            sql.push_str(&self.expr(part)?);
        }
        sql.push(')');
        Ok(sql)
    }

    // `expr` and `join` are the only recursion; leaves are compiled in `leaf` so the frames
    // on the recursive path stay small.
    fn expr(&mut self, e: &Expr) -> Result<String, FilterError> {
        match e {
            Expr::And(parts) => self.join(parts, " AND "),
            Expr::Or(parts) => self.join(parts, " OR "),
            Expr::Not(a) => {
                let inner = self.expr(a)?;
                Ok(negate(&inner))
            }
            leaf => self.leaf(leaf),
        }
    }

    fn leaf(&mut self, e: &Expr) -> Result<String, FilterError> {
        Ok(match e {
            Expr::And(_) | Expr::Or(_) | Expr::Not(_) => return self.expr(e),
            Expr::Text(t) => {
                // A function the lake registers: case-insensitive substring, as RE2's `(?i)`
                // would match it but faster (see sluice-lake's `functions`).
                let p = self.bind(Param::Text(t.clone()));
                format!("{ICONTAINS}(coalesce(decoded, payload_text, ''), {p})")
            }
            Expr::After(us) => format!("(epoch_us(timestamp) >= {})", self.bind(Param::Int(*us))),
            Expr::Before(us) => format!("(epoch_us(timestamp) < {})", self.bind(Param::Int(*us))),
            Expr::Last(d) => format!(
                "(epoch_us(timestamp) >= {})",
                self.bind(Param::Int(self.now_us.saturating_sub(*d)))
            ),
            Expr::Exists(f) => self.exists(f),
            Expr::Compare(c) => self.compare(c)?,
        })
    }

    /// `expr` (a fixed SQL expression, never user text) compared with a text value.
    fn text_compare(&mut self, expr: &str, op: Op, v: &Value) -> String {
        match op {
            Op::Match => format!(
                "regexp_matches(coalesce({expr}, ''), {})",
                self.bind(Param::Text(value_text(v)))
            ),
            op => format!(
                "({expr} {} {})",
                sql_op(op),
                self.bind(Param::Text(value_text(v)))
            ),
        }
    }

    /// A value inside a JSON text column (`column` is a fixed name, never user text) compared
    /// with `v`: numbers by value, everything else as text.
    fn json_compare(&mut self, column: &str, path: &[PathSegment], op: Op, v: &Value) -> String {
        let p = self.bind(Param::Text(json_path(path)));
        let x = format!("json_extract_string({column}, {p})");
        match (op, v) {
            (Op::Match, v) => format!(
                "regexp_matches({x}, {})",
                self.bind(Param::Text(value_text(v)))
            ),
            (op, Value::Num(n)) => format!(
                "(TRY_CAST({x} AS DOUBLE) {} {})",
                sql_op(op),
                self.bind(Param::Float(*n))
            ),
            (op, v) => format!(
                "({x} {} {})",
                sql_op(op),
                self.bind(Param::Text(value_text(v)))
            ),
        }
    }

    fn exists(&mut self, f: &Field) -> String {
        match f {
            Field::Decoded(path) => format!(
                "(json_extract(decoded, {}) IS NOT NULL)",
                self.bind(Param::Text(json_path(path)))
            ),
            Field::Header(name) => {
                let p = self.bind(Param::Text(name.clone()));
                format!("(len(list_filter(headers, h -> h.key = {p})) > 0)")
            }
            Field::Property(name) => format!(
                "(json_extract(properties, {}) IS NOT NULL)",
                self.bind(Param::Text(json_path(&[PathSegment::Key(name.clone())])))
            ),
            other => match metadata_column(other) {
                Column::Text(c) | Column::Number(c) => format!("({c} IS NOT NULL)"),
            },
        }
    }

    fn compare(&mut self, c: &Comparison) -> Result<String, FilterError> {
        if c.op == Op::In {
            let parts: Result<Vec<String>, FilterError> = c
                .values
                .iter()
                .map(|v| {
                    self.compare(&Comparison {
                        field: c.field.clone(),
                        op: Op::Eq,
                        values: vec![v.clone()],
                        column: c.column,
                    })
                })
                .collect();
            return Ok(format!("({})", parts?.join(" OR ")));
        }
        let v = &c.values[0];
        match &c.field {
            Field::Decoded(path) => {
                // `decoded` is always serde_json's canonical text, so an equal value must appear
                // in it verbatim: a substring test first spares parsing JSON on most rows.
                let guard = match (c.op, equality_needle(v)) {
                    (Op::Eq, Some(needle)) => {
                        format!("contains(decoded, {}) AND ", self.bind(Param::Text(needle)))
                    }
                    _ => String::new(),
                };
                let test = self.json_compare("decoded", path, c.op, v);
                Ok(if guard.is_empty() {
                    test
                } else {
                    format!("({guard}{test})")
                })
            }
            Field::Header(name) => {
                let k = self.bind(Param::Text(name.clone()));
                let test = match c.op {
                    Op::Match => format!(
                        "regexp_matches(coalesce(try(decode(h.value)), ''), {})",
                        self.bind(Param::Text(value_text(v)))
                    ),
                    Op::Eq | Op::Ne => format!(
                        "h.value = {}",
                        self.bind(Param::Blob(value_text(v).into_bytes()))
                    ),
                    op => format!(
                        "try(decode(h.value)) {} {}",
                        sql_op(op),
                        self.bind(Param::Text(value_text(v)))
                    ),
                };
                let any = format!("(len(list_filter(headers, h -> h.key = {k} AND {test})) > 0)");
                Ok(if c.op == Op::Ne {
                    format!("(NOT {any})")
                } else {
                    any
                })
            }
            Field::Property(name) => {
                Ok(self.json_compare("properties", &[PathSegment::Key(name.clone())], c.op, v))
            }
            Field::Key => Ok(match c.op {
                Op::Eq | Op::Ne => format!(
                    "(key {} {})",
                    sql_op(c.op),
                    self.bind(Param::Blob(value_text(v).into_bytes()))
                ),
                // Other comparisons read the key as text (NULL where it is not UTF-8).
                op => self.text_compare("try(decode(key))", op, v),
            }),
            Field::Timestamp => {
                let wrong = || {
                    FilterError::at(
                        c.column,
                        "timestamp compares with a time like \"2026-11-20T10:00:00Z\"",
                    )
                };
                let us = match v {
                    Value::Str(s) => chrono::DateTime::parse_from_rfc3339(s)
                        .map(|t| t.timestamp_micros())
                        .map_err(|_| wrong())?,
                    _ => return Err(wrong()),
                };
                if c.op == Op::Match {
                    return Err(FilterError::at(c.column, "`~` does not apply to timestamp"));
                }
                Ok(format!(
                    "(epoch_us(timestamp) {} {})",
                    sql_op(c.op),
                    self.bind(Param::Int(us))
                ))
            }
            other => match metadata_column(other) {
                Column::Text(col) => Ok(self.text_compare(col, c.op, v)),
                Column::Number(col) => {
                    let n = match v {
                        Value::Num(n) => *n,
                        _ => {
                            return Err(FilterError::at(
                                c.column,
                                format!("{col} compares with a number, found {:?}", value_text(v)),
                            ))
                        }
                    };
                    if c.op == Op::Match {
                        return Err(FilterError::at(
                            c.column,
                            format!("`~` does not apply to the number {col}"),
                        ));
                    }
                    let p = if n.fract() == 0.0 && n.abs() < 9.0e15 {
                        Param::Int(n as i64)
                    } else {
                        Param::Float(n)
                    };
                    Ok(format!("({col} {} {})", sql_op(c.op), self.bind(p)))
                }
            },
        }
    }
}

fn metadata_column(f: &Field) -> Column {
    match f {
        Field::Id => Column::Text("id"),
        Field::Bus => Column::Text("bus"),
        Field::Connection => Column::Text("connection"),
        Field::Source => Column::Text("source"),
        Field::Schema => Column::Text("schema"),
        Field::Encoding => Column::Text("encoding"),
        Field::DecodeError => Column::Text("decode_error"),
        Field::Partition => Column::Number("partition"),
        Field::Offset => Column::Number("\"offset\""),
        Field::SubOffset => Column::Number("sub_offset"),
        Field::Size => Column::Number("size"),
        Field::Key => Column::Text("key"),
        Field::Timestamp => Column::Number("timestamp"),
        Field::Header(_) | Field::Decoded(_) | Field::Property(_) => {
            unreachable!("not a metadata column")
        }
    }
}
