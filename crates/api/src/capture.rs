//! The capture pipeline lives in `sluice-capture`; this names it for the rest of the crate and
//! turns its errors into `{code, message}`. Reading the config and schemas into decoders
//! stays with `Sluice` (`event_builder`).

use crate::error::{ApiError, ErrorCode};

pub use sluice_capture::{
    CaptureError, CaptureOptions, CaptureProgress, EventBuilder, TopicDecoders,
    DEFAULT_BROKER_TIMEOUT, DEFAULT_MAX_PAYLOAD_BYTES, VALUE_SCHEMA_HEADER,
};

/// The codes are those of the bus or lake error behind it (an unreachable bus stays
/// `unreachable`, a lake that refused a size stays `invalid_input`); a failed last flush is
/// `lake`. The message is the capture's, account included.
impl From<CaptureError> for ApiError {
    fn from(e: CaptureError) -> Self {
        let message = e.to_string();
        let code = match e {
            CaptureError::Bus(b) => return b.into(),
            CaptureError::Lake(l) => return l.into(),
            CaptureError::NotWritten { .. } => ErrorCode::Lake,
            CaptureError::Stopped { cause, .. } => ApiError::from(*cause).code,
        };
        ApiError::new(code, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_bus::BusError;

    #[test]
    fn a_stopped_capture_keeps_the_code_of_its_cause() {
        let e = CaptureError::Stopped {
            cause: Box::new(CaptureError::Bus(BusError::Unreachable {
                what: "kafka".into(),
                reason: "gone".into(),
            })),
            progress: Box::default(),
            not_written: 0,
        };
        let message = e.to_string();
        let api = ApiError::from(e);
        assert_eq!(api.code, ErrorCode::Unreachable);
        assert_eq!(api.message, message);
        assert!(api
            .message
            .ends_with("; captured 0 events into the lake before stopping (0 read)"));
    }
}
