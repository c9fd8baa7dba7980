//! Arrow batches of event queries back into `Event`s. Values are found by the names the column
//! table reads them under (`columns::select_list`), looked up once per batch, never per row, and
//! cast to the types read here, so the types DuckDB picks for its Arrow export (large or view
//! strings, say) do not matter. Converting column by column matters for speed: reading values
//! one at a time through DuckDB's row API dominated replay profiles.

use crate::columns::{self as col, Column};
use crate::layout::LakeError;
use arrow::array::{
    Array, BinaryArray, BooleanArray, Int32Array, Int64Array, ListArray, StringArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field};
use arrow::record_batch::RecordBatch;
use sluice_model::{Bus, Encoding, Event, Header};
use std::sync::Arc;

fn bad(column: &str, reason: impl std::fmt::Display) -> LakeError {
    LakeError::Column {
        column: column.to_string(),
        reason: reason.to_string(),
    }
}

/// The batch's value named `name`, cast to `ty`.
pub(crate) fn column_as<T: Array + Clone + 'static>(
    batch: &RecordBatch,
    name: &str,
    ty: &DataType,
) -> Result<T, LakeError> {
    let c = batch
        .column_by_name(name)
        .ok_or_else(|| bad(name, "not in the query's result"))?;
    downcast(&cast(c, ty).map_err(|e| bad(name, e))?, name)
}

fn downcast<T: Array + Clone + 'static>(a: &dyn Array, name: &str) -> Result<T, LakeError> {
    a.as_any()
        .downcast_ref::<T>()
        .cloned()
        .ok_or_else(|| bad(name, format!("unexpected type {}", a.data_type())))
}

/// A column that every read selects.
fn stored<T: Array + Clone + 'static>(
    batch: &RecordBatch,
    c: &Column,
    ty: DataType,
) -> Result<T, LakeError> {
    column_as(batch, c.read_name(), &ty)
}

/// A text column; `None` only for one that `Columns::ForSending` leaves out and the batch lacks.
fn text(batch: &RecordBatch, c: &Column) -> Result<Option<StringArray>, LakeError> {
    if !c.sent && batch.column_by_name(c.read_name()).is_none() {
        return Ok(None);
    }
    column_as(batch, c.read_name(), &DataType::Utf8).map(Some)
}

/// One list per row (`HEADER_KEYS` or `HEADER_VALUES`) and the flat values of all of them,
/// typed once, so a row's headers are slices of the flat values rather than a new array each.
struct Lists<T> {
    lists: ListArray,
    values: T,
}

impl<T: Array + Clone + 'static> Lists<T> {
    fn new(batch: &RecordBatch, name: &str, item: DataType) -> Result<Self, LakeError> {
        let ty = DataType::List(Arc::new(Field::new("item", item, true)));
        let lists: ListArray = column_as(batch, name, &ty)?;
        let values = downcast(lists.values().as_ref(), name)?;
        Ok(Lists { lists, values })
    }

    /// Row `i`'s items, as positions in `values`.
    fn range(&self, i: usize) -> std::ops::Range<usize> {
        if self.lists.is_null(i) {
            return 0..0;
        }
        let o = self.lists.value_offsets();
        o[i] as usize..o[i + 1] as usize
    }
}

/// One Arrow batch of an event query, its columns found by name and typed.
pub(crate) struct EventColumns {
    id: Option<StringArray>,
    bus: Option<StringArray>,
    connection: Option<StringArray>,
    source: Option<StringArray>,
    partition: Int32Array,
    offset: Int64Array,
    key: BinaryArray,
    key_decoded: Option<StringArray>,
    header_keys: Lists<StringArray>,
    header_values: Lists<BinaryArray>,
    timestamp: Int64Array,
    captured_at: Int64Array,
    payload: BinaryArray,
    payload_text: Option<StringArray>,
    size: Int64Array,
    truncated: BooleanArray,
    schema: Option<StringArray>,
    encoding: Option<StringArray>,
    decoded: Option<StringArray>,
    decode_error: Option<StringArray>,
    properties: Option<StringArray>,
    sub_offset: Int64Array,
}

impl EventColumns {
    pub(crate) fn new(batch: &RecordBatch) -> Result<Self, LakeError> {
        Ok(EventColumns {
            id: text(batch, &col::ID)?,
            bus: text(batch, &col::BUS)?,
            connection: text(batch, &col::CONNECTION)?,
            source: text(batch, &col::SOURCE)?,
            partition: stored(batch, &col::PARTITION, DataType::Int32)?,
            offset: stored(batch, &col::OFFSET, DataType::Int64)?,
            key: stored(batch, &col::KEY, DataType::Binary)?,
            key_decoded: text(batch, &col::KEY_DECODED)?,
            header_keys: Lists::new(batch, col::HEADER_KEYS, DataType::Utf8)?,
            header_values: Lists::new(batch, col::HEADER_VALUES, DataType::Binary)?,
            timestamp: stored(batch, &col::TIMESTAMP, DataType::Int64)?,
            captured_at: stored(batch, &col::CAPTURED_AT, DataType::Int64)?,
            payload: stored(batch, &col::PAYLOAD, DataType::Binary)?,
            payload_text: text(batch, &col::PAYLOAD_TEXT)?,
            size: stored(batch, &col::SIZE, DataType::Int64)?,
            truncated: stored(batch, &col::TRUNCATED, DataType::Boolean)?,
            schema: text(batch, &col::SCHEMA)?,
            encoding: text(batch, &col::ENCODING)?,
            decoded: text(batch, &col::DECODED)?,
            decode_error: text(batch, &col::DECODE_ERROR)?,
            properties: text(batch, &col::PROPERTIES)?,
            sub_offset: stored(batch, &col::SUB_OFFSET, DataType::Int64)?,
        })
    }

    /// Row `i` as an event; an error when its bus is not one this build knows.
    pub(crate) fn event(&self, i: usize) -> Result<Event, LakeError> {
        let at = |a| str_at(a, i);
        let text = |a| at(a).map(str::to_string);
        let valid = |a: &dyn Array| a.is_valid(i);
        let bus = at(&self.bus);
        let bus = bus
            .and_then(Bus::parse)
            .ok_or_else(|| LakeError::UnknownBus(bus.unwrap_or_default().to_string()))?;
        let (keys, values) = (&self.header_keys, &self.header_values);
        let (k, v) = (keys.range(i), values.range(i));
        let headers = k
            .zip(v)
            .map(|(kj, vj)| Header {
                key: keys.values.value(kj).to_string(),
                value: values
                    .values
                    .is_valid(vj)
                    .then(|| values.values.value(vj).to_vec()),
            })
            .collect();
        Ok(Event {
            id: text(&self.id).unwrap_or_default(),
            bus,
            connection: text(&self.connection).unwrap_or_default(),
            source: text(&self.source).unwrap_or_default(),
            partition: valid(&self.partition).then(|| self.partition.value(i)),
            offset: valid(&self.offset).then(|| self.offset.value(i)),
            sub_offset: valid(&self.sub_offset).then(|| self.sub_offset.value(i)),
            key: valid(&self.key).then(|| self.key.value(i).to_vec()),
            key_decoded: text(&self.key_decoded),
            headers,
            timestamp_us: valid(&self.timestamp).then(|| self.timestamp.value(i)),
            captured_at_us: self.captured_at.value(i),
            payload: if valid(&self.payload) {
                self.payload.value(i).to_vec()
            } else {
                Vec::new()
            },
            payload_text: text(&self.payload_text),
            size: self.size.value(i),
            truncated: valid(&self.truncated) && self.truncated.value(i),
            schema: text(&self.schema),
            encoding: Encoding::parse(at(&self.encoding).unwrap_or("binary")),
            decoded: text(&self.decoded),
            decode_error: text(&self.decode_error),
            properties: text(&self.properties),
        })
    }
}

fn str_at(a: &Option<StringArray>, i: usize) -> Option<&str> {
    a.as_ref().and_then(|a| a.is_valid(i).then(|| a.value(i)))
}
