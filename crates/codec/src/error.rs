//! The errors of decoding a payload with its mapped type and of encoding an edit back. Their
//! text is what users read: a decode error is stored as the event's `decode_error`, so each
//! variant reads exactly as the error it wraps.

use crate::{AvroError, DecoderBug, FramedError, ProtobufError};

/// Why a payload did not decode with its mapped type.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Protobuf(#[from] ProtobufError),
    #[error(transparent)]
    Avro(#[from] AvroError),
    #[error(transparent)]
    Bug(#[from] DecoderBug),
}

/// Why an edited event's JSON could not be encoded back to payload bytes.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("no schema is known for this event: map its topic to a type, or configure the registry that framed it")]
    NoSchema,
    #[error(transparent)]
    Protobuf(#[from] ProtobufError),
    #[error(transparent)]
    Avro(#[from] AvroError),
    /// With the schema a registry holds for the payload's frame.
    #[error(transparent)]
    Framed(#[from] FramedError),
    #[error(transparent)]
    Bug(#[from] DecoderBug),
}
