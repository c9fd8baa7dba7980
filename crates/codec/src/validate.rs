//! Checks on descriptor sets that prost-reflect does not make but relies on: it links names and
//! numbers with clear errors, yet takes map entries on trust and panics when one is malformed
//! (a map-entry message without its key or value field, or with a key type no map can have).
//! protoc and protox never write such a set; a hand-built or corrupted one does, so every set
//! from outside (a file, a folder, the registry) is checked before it reaches a pool.

use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto};

/// What is wrong with one message of one descriptor file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("in {file}, message {message}: {problem}")]
pub struct DescriptorProblem {
    /// The descriptor file's own name (`shop/v1/order.proto`).
    pub file: String,
    /// The message's full name.
    pub message: String,
    pub problem: MapEntryProblem,
}

/// How a map-entry message (`option map_entry`) is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MapEntryProblem {
    #[error("it is a map entry (option map_entry) with field {name} = {number}; {SHAPE}")]
    ExtraField { name: String, number: i32 },
    #[error(
        "it is a map entry (option map_entry) without a {role} field (number {number}); {SHAPE}"
    )]
    Missing { role: &'static str, number: i32 },
    #[error("it is a map entry (option map_entry) with two fields numbered {number}; {SHAPE}")]
    Twice { number: i32 },
    #[error(
        "its map entry {role} field {name} is repeated; map keys and values are single values"
    )]
    Repeated { role: &'static str, name: String },
    #[error("its map entry key field {name} has type {ty}, which no map key can have (integers, bool and string can)")]
    KeyType { name: String, ty: String },
}

const SHAPE: &str = "a map entry holds exactly `key = 1` and `value = 2`";

/// The first problem in `files`, if any.
pub fn check_files(files: &[FileDescriptorProto]) -> Result<(), DescriptorProblem> {
    for f in files {
        let prefix = f.package().to_string();
        check_messages(f.name(), &prefix, &f.message_type)?;
    }
    Ok(())
}

// Recursion: nesting is bounded by prost's decode recursion limit (100) for sets read from
// bytes, and by protox's parser for compiled ones.
fn check_messages(
    file: &str,
    scope: &str,
    messages: &[DescriptorProto],
) -> Result<(), DescriptorProblem> {
    for m in messages {
        let full = match scope {
            "" => m.name().to_string(),
            s => format!("{s}.{}", m.name()),
        };
        if m.options.as_ref().is_some_and(|o| o.map_entry()) {
            check_map_entry(&m.field).map_err(|problem| DescriptorProblem {
                file: file.to_string(),
                message: full.clone(),
                problem,
            })?;
        }
        check_messages(file, &full, &m.nested_type)?;
    }
    Ok(())
}

const KEY: i32 = 1;
const VALUE: i32 = 2;

fn check_map_entry(fields: &[FieldDescriptorProto]) -> Result<(), MapEntryProblem> {
    if let Some(extra) = fields
        .iter()
        .find(|f| f.number() != KEY && f.number() != VALUE)
    {
        return Err(MapEntryProblem::ExtraField {
            name: extra.name().to_string(),
            number: extra.number(),
        });
    }
    let find =
        |number: i32, role: &'static str| -> Result<&FieldDescriptorProto, MapEntryProblem> {
            let mut it = fields.iter().filter(|f| f.number() == number);
            match (it.next(), it.next()) {
                (Some(f), None) => Ok(f),
                (None, _) => Err(MapEntryProblem::Missing { role, number }),
                (Some(_), Some(_)) => Err(MapEntryProblem::Twice { number }),
            }
        };
    let key = find(KEY, "key")?;
    let value = find(VALUE, "value")?;
    for (f, role) in [(key, "key"), (value, "value")] {
        if f.label() == Label::Repeated {
            return Err(MapEntryProblem::Repeated {
                role,
                name: f.name().to_string(),
            });
        }
    }
    // prost-reflect resolves a field's type from `type_name` whenever one is set, whatever
    // `type` says; a key can only be a scalar it can hash.
    let key_ok = key.type_name().is_empty()
        && matches!(
            key.r#type(),
            Type::Int32
                | Type::Int64
                | Type::Uint32
                | Type::Uint64
                | Type::Sint32
                | Type::Sint64
                | Type::Fixed32
                | Type::Fixed64
                | Type::Sfixed32
                | Type::Sfixed64
                | Type::Bool
                | Type::String
        );
    if !key_ok {
        let ty = match key.type_name() {
            "" => key.r#type().as_str_name().to_string(),
            name => name.trim_start_matches('.').to_string(),
        };
        return Err(MapEntryProblem::KeyType {
            name: key.name().to_string(),
            ty,
        });
    }
    Ok(())
}
