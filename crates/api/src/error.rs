//! The one error type every command returns; it crosses to the UI as `{code, message}`.

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
}

#[derive(Debug, Clone, Serialize, thiserror::Error, ts_rs::TS)]
#[error("{message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
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
            _ => ErrorCode::Lake,
        };
        ApiError::new(code, e.to_string())
    }
}

impl From<sluice_filter::FilterError> for ApiError {
    fn from(e: sluice_filter::FilterError) -> Self {
        ApiError::new(ErrorCode::Filter, format!("filter error at {e}"))
    }
}

impl From<sluice_codec::SchemaError> for ApiError {
    fn from(e: sluice_codec::SchemaError) -> Self {
        ApiError::new(ErrorCode::Schema, e.to_string())
    }
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;
