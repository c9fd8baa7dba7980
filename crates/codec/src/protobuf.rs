//! Protobuf payloads as canonical proto3 JSON: prost-reflect's serializer with its default
//! options is the proto3 JSON mapping (lowerCamelCase names, 64-bit integers as strings, bytes
//! as base64, enums by name, well-known types mapped, default values omitted). Every call into
//! prost-reflect runs behind the panic guard.

use crate::guard::{guarded, DecoderBug};
use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor};

/// Decodes and encodes one message type.
#[derive(Debug, Clone)]
pub struct ProtobufCodec {
    desc: MessageDescriptor,
}

#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("not a valid {type_name} message: {reason}")]
    Decode {
        type_name: String,
        #[source]
        reason: ProtobufCause,
    },
    #[error("JSON does not fit {type_name}: {reason}")]
    Encode {
        type_name: String,
        #[source]
        reason: ProtobufCause,
    },
}

/// What failed inside one decode or encode, in the dependency's own words.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufCause {
    #[error(transparent)]
    Wire(#[from] prost::DecodeError),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Bug(#[from] DecoderBug),
}

impl ProtobufCodec {
    pub fn new(desc: MessageDescriptor) -> Self {
        ProtobufCodec { desc }
    }

    pub fn type_name(&self) -> &str {
        self.desc.full_name()
    }

    pub fn decode_to_json(&self, bytes: &[u8]) -> Result<String, ProtobufError> {
        let err = |reason: ProtobufCause| ProtobufError::Decode {
            type_name: self.type_name().to_string(),
            reason,
        };
        // Decoding and printing both walk the descriptor through prost-reflect's accessors,
        // which panic on a malformed map entry: the guard turns that into this event's error.
        guarded(|| {
            let msg =
                DynamicMessage::decode(self.desc.clone(), bytes).map_err(|e| err(e.into()))?;
            serde_json::to_string(&msg).map_err(|e| err(e.into()))
        })
        .map_err(|bug| err(bug.into()))?
    }

    /// Encodes canonical proto3 JSON back to wire bytes (for replaying edited events).
    pub fn encode_from_json(&self, json: &str) -> Result<Vec<u8>, ProtobufError> {
        let err = |reason: ProtobufCause| ProtobufError::Encode {
            type_name: self.type_name().to_string(),
            reason,
        };
        guarded(|| {
            let mut de = serde_json::Deserializer::from_str(json);
            let msg = DynamicMessage::deserialize(self.desc.clone(), &mut de)
                .map_err(|e| err(e.into()))?;
            de.end().map_err(|e| err(e.into()))?;
            Ok(msg.encode_to_vec())
        })
        .map_err(|bug| err(bug.into()))?
    }
}
