//! The filter language people type into Sluice's search bar, and its compiler to DuckDB SQL.
//!
//! This crate owns syntax, error positions and the column/operator allowlist. It must not run
//! queries, and it must never splice user text into SQL: every value, JSON path and regex leaves
//! as a bound parameter, and every column or operator comes from the fixed tables below.
//! Whatever the input, parsing and compiling take bounded stack, time and memory: a filter is
//! at most [`MAX_FILTER_BYTES`] long, nests at most [`MAX_DEPTH`] deep and holds at most
//! [`MAX_TERMS`] terms, and past any of those it is a [`FilterError`] at the column concerned.

mod lexer;
mod needs;
mod parser;
mod sql;

pub use needs::Needs;
pub use parser::{
    parse, Comparison, Expr, Field, Op, Value, MAX_DEPTH, MAX_FILTER_BYTES, MAX_TERMS,
};
pub use sql::{compile, Compiled, Param, ICONTAINS, MAX_IDS};

/// A filter that could not be understood, with the 1-based column where the problem starts.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column {column}: {message}")]
pub struct FilterError {
    pub column: usize,
    pub message: String,
}

impl FilterError {
    pub(crate) fn at(column: usize, message: impl Into<String>) -> Self {
        FilterError {
            column,
            message: message.into(),
        }
    }
}

/// Parses and compiles in one step; `now_us` anchors `last:` windows.
pub fn to_sql(filter: &str, now_us: i64) -> Result<Compiled, FilterError> {
    let expr = parse(filter)?;
    compile(expr.as_ref(), now_us)
}

/// `value` as a string literal of the filter language (quoted, `\` and `"` escaped), for
/// filters that code builds around a name or id it was given.
pub fn quote(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_values_parse_back_unchanged() {
        for v in [
            "plain",
            "kafka:local/orders/0/7",
            r#"a "quoted" \ back\slash"#,
            "",
        ] {
            let Some(Expr::Compare(c)) = parse(&format!("event.id = {}", quote(v))).unwrap() else {
                panic!("{v:?} did not parse as a comparison");
            };
            assert_eq!(c.values, vec![Value::Str(v.to_string())]);
        }
    }
}
