//! The one error type every command returns; it crosses to the UI as `{code, message}`, plus
//! where the problem is when that is known: `column` for a filter (the filter bar points at
//! it), `file`, `line` and `column` for a schema or an edit file. `message` already says the
//! place in words, so a client that ignores the fields loses nothing.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidInput,
    NotFound,
    AlreadyExists,
    Unreachable,
    AuthFailed,
    Schema,
    Filter,
    Lake,
    Bus,
    Config,
    Io,
    Forbidden,
    Timeout,
    DeliveryFailed,
    /// Another maintenance run holds the lake (compaction, prune, re-decode).
    Busy,
}

#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error, ts_rs::TS)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// The file the problem is in (a schema, an edit file), as the message names it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub file: Option<String>,
    /// 1-based line in `file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub line: Option<usize>,
    /// 1-based column: in the filter for a filter error, else on `line` of `file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub column: Option<usize>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            file: None,
            line: None,
            column: None,
        }
    }

    /// The same error, located at `column` (1-based).
    pub fn at_column(mut self, column: usize) -> Self {
        self.column = Some(column);
        self
    }

    /// The same error, located in `file` at `line` and `column` where those are known.
    pub fn in_file(
        mut self,
        file: impl Into<String>,
        line: Option<usize>,
        column: Option<usize>,
    ) -> Self {
        self.file = Some(file.into());
        self.line = line;
        self.column = column;
        self
    }
}

impl From<sluice_bus::BusError> for ApiError {
    fn from(e: sluice_bus::BusError) -> Self {
        use sluice_bus::BusError as B;
        let code = match &e {
            B::Unreachable { .. } => ErrorCode::Unreachable,
            B::Auth { .. } => ErrorCode::AuthFailed,
            B::UnknownSource { .. } => ErrorCode::NotFound,
            B::Config(_) => ErrorCode::Config,
            B::Invalid(_) => ErrorCode::InvalidInput,
            B::MissingFile(_) => ErrorCode::NotFound,
            B::Client(_) => ErrorCode::Bus,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<sluice_lake::LakeError> for ApiError {
    fn from(e: sluice_lake::LakeError) -> Self {
        use sluice_lake::LakeError as L;
        let code = match &e {
            L::Forbidden(_) => ErrorCode::Forbidden,
            L::Timeout(_) => ErrorCode::Timeout,
            L::Io { .. } => ErrorCode::Io,
            L::BadSize(_) => ErrorCode::InvalidInput,
            L::Busy(_) => ErrorCode::Busy,
            _ => ErrorCode::Lake,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<sluice_filter::FilterError> for ApiError {
    fn from(e: sluice_filter::FilterError) -> Self {
        ApiError::new(ErrorCode::Filter, format!("filter error at {e}")).at_column(e.column)
    }
}

impl From<sluice_codec::SchemaError> for ApiError {
    fn from(e: sluice_codec::SchemaError) -> Self {
        let located = ApiError::new(ErrorCode::Schema, e.to_string());
        match e.file {
            Some(file) => located.in_file(file, e.line, e.column),
            None => located,
        }
    }
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_error_crosses_with_its_column_as_a_field() {
        let filter_error = sluice_filter::to_sql("status = ", 0).unwrap_err();
        let problem = filter_error.message.clone();
        let e = ApiError::from(filter_error);
        // The message is what the CLI prints and tests grep: unchanged.
        let message = format!("filter error at column 10: {problem}");
        assert_eq!(e.message, message);
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"code": "filter", "message": message, "column": 10})
        );
    }

    #[test]
    fn errors_without_a_place_cross_as_before() {
        let e = ApiError::new(ErrorCode::NotFound, "no connection named x");
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"code":"not_found","message":"no connection named x"}"#
        );
    }

    #[test]
    fn a_schema_error_crosses_with_file_line_and_column() {
        let e: ApiError = sluice_codec::SchemaError {
            file: Some("shop/order.proto".into()),
            line: Some(3),
            column: Some(9),
            message: "expected ';'".into(),
        }
        .into();
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({
                "code": "schema",
                "message": "shop/order.proto:3:9: expected ';'",
                "file": "shop/order.proto",
                "line": 3,
                "column": 9,
            })
        );
    }
}
