//! Protobuf payloads as canonical proto3 JSON: lowerCamelCase names, 64-bit integers as
//! strings, bytes as base64, enums by name, well-known types mapped, default values omitted,
//! exactly as prost-reflect's serializer prints with its default options.
//!
//! Decoding goes straight from wire bytes to JSON text ([`transcode`]), with per-type field
//! tables built once ([`plan`]), and prints what `DynamicMessage::decode` followed by
//! `serde_json::to_string` prints, failing where that fails. Types the tables do not model
//! (groups, extensions, unusual well-known-type descriptors) decode on that general path.
//! Every call runs behind the panic guard.

mod json;
mod plan;
mod transcode;
mod wire;
mod wkt;

pub use wire::TranscodeError;

use crate::guard::{guarded, DecoderBug};
use plan::{plan_for, Plan};
use prost::Message as _;
use prost_reflect::{DynamicMessage, MessageDescriptor};
use std::sync::{Arc, OnceLock};

/// Decodes and encodes one message type.
#[derive(Debug, Clone)]
pub struct ProtobufCodec {
    desc: MessageDescriptor,
    /// Built on first decode, shared by clones.
    plan: Arc<OnceLock<Arc<Plan>>>,
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
    Transcode(#[from] TranscodeError),
    #[error(transparent)]
    Bug(#[from] DecoderBug),
}

impl ProtobufCodec {
    pub fn new(desc: MessageDescriptor) -> Self {
        ProtobufCodec {
            desc,
            plan: Arc::default(),
        }
    }

    pub fn type_name(&self) -> &str {
        self.desc.full_name()
    }

    pub fn decode_to_json(&self, bytes: &[u8]) -> Result<String, ProtobufError> {
        let err = |reason: ProtobufCause| ProtobufError::Decode {
            type_name: self.type_name().to_string(),
            reason,
        };
        // prost-reflect's accessors panic on a malformed map entry, and the transcoder is
        // new code: the guard turns a panic in either into this event's error.
        guarded(|| {
            let plan = self.plan.get_or_init(|| plan_for(&self.desc));
            if plan.fallback.is_none() {
                match transcode::transcode(plan, bytes) {
                    Err(TranscodeError::Unsupported) => {}
                    done => return done.map_err(|e| err(e.into())),
                }
            }
            self.decode_general(bytes).map_err(err)
        })
        .map_err(|bug| err(bug.into()))?
    }

    /// The general path: a `DynamicMessage`, printed by prost-reflect's serializer.
    fn decode_general(&self, bytes: &[u8]) -> Result<String, ProtobufCause> {
        let msg = DynamicMessage::decode(self.desc.clone(), bytes)?;
        Ok(serde_json::to_string(&msg)?)
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
