//! What any event matching a filter must have, in terms a per-file summary can answer: text
//! its searched payload contains, and the time range it falls in. The lake uses this to skip
//! whole files without reading them, so every rule here is a necessary condition only; when
//! no condition is certain, the answer is `Anything`.

use crate::parser::{Comparison, Expr, Field, Op, Value};
use crate::sql::equality_needle;

#[derive(Debug, Clone, PartialEq)]
pub enum Needs {
    /// Nothing certain: every file may hold a match.
    Anything,
    /// The searched text (decoded JSON, else the payload text) contains `text`, compared with
    /// ASCII letters case-insensitive. `whole`: the occurrence is bounded on both sides by a
    /// character that is not an ASCII letter or digit (or by the text's ends), so the first
    /// and last words of `text` are whole words of the payload as well.
    Contains {
        text: String,
        whole: bool,
    },
    /// A number equal to this whole number (digits only, no sign) appears in the searched text;
    /// it may be written with leading zeros, a fraction or an exponent ("0042", "42.0", "42e0").
    Number(String),
    /// The event's broker timestamp is at or after this time (microseconds).
    TimeFrom(i64),
    /// The event's broker timestamp is before this time (microseconds).
    TimeBefore(i64),
    All(Vec<Needs>),
    Any(Vec<Needs>),
}

pub fn needs(expr: Option<&Expr>, now_us: i64) -> Needs {
    expr.map_or(Needs::Anything, |e| of(e, now_us))
}

fn of(e: &Expr, now_us: i64) -> Needs {
    match e {
        Expr::And(parts) => {
            let parts: Vec<Needs> = parts
                .iter()
                .map(|p| of(p, now_us))
                .flat_map(|n| match n {
                    Needs::All(v) => v,
                    Needs::Anything => Vec::new(),
                    n => vec![n],
                })
                .collect();
            match parts.len() {
                0 => Needs::Anything,
                1 => parts.into_iter().next().unwrap_or(Needs::Anything),
                _ => Needs::All(parts),
            }
        }
        Expr::Or(parts) => either(parts.iter().map(|p| of(p, now_us)).collect()),
        // A negation holds where text is absent, which no summary of present text can rule out.
        Expr::Not(_) => Needs::Anything,
        Expr::Text(t) if !t.is_empty() => Needs::Contains {
            text: t.clone(),
            whole: false,
        },
        Expr::Text(_) => Needs::Anything,
        Expr::After(us) => Needs::TimeFrom(*us),
        Expr::Before(us) => Needs::TimeBefore(*us),
        Expr::Last(d) => Needs::TimeFrom(now_us.saturating_sub(*d)),
        Expr::Exists(_) => Needs::Anything,
        Expr::Compare(c) => compare(c),
    }
}

fn either(parts: Vec<Needs>) -> Needs {
    if parts.contains(&Needs::Anything) {
        return Needs::Anything;
    }
    Needs::Any(
        parts
            .into_iter()
            .flat_map(|n| match n {
                Needs::Any(v) => v,
                n => vec![n],
            })
            .collect(),
    )
}

fn compare(c: &Comparison) -> Needs {
    if !matches!(c.field, Field::Decoded(_)) {
        return Needs::Anything;
    }
    match c.op {
        Op::In => either(
            c.values
                .iter()
                .map(|v| equality(v).unwrap_or(Needs::Anything))
                .collect(),
        ),
        Op::Eq => c
            .values
            .first()
            .and_then(equality)
            .unwrap_or(Needs::Anything),
        _ => Needs::Anything,
    }
}

/// A decoded field equal to `v` appears in the canonical JSON as a whole value: a quoted
/// string (the needle is its escaped content) or a boolean between JSON punctuation, so the
/// needle is bounded on both sides. Numbers compare by value, so only their digits are certain.
fn equality(v: &Value) -> Option<Needs> {
    let text = equality_needle(v)?;
    Some(match v {
        Value::Num(_) => Needs::Number(text.trim_start_matches('-').to_string()),
        _ => Needs::Contains { text, whole: true },
    })
}
