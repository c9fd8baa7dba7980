//! Events into Arrow batches of the lake's row shape (the column table in `columns`), by
//! borrowed rows so capture appends what it read without copying it into an `Event` first.

use crate::columns::{self as col, arrow_schema, header_fields, header_item};
use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Int32Builder, Int64Builder, ListBuilder,
    StringBuilder, StructBuilder, TimestampMicrosecondBuilder,
};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use sluice_model::{Bus, Encoding, Event, Header};
use std::sync::Arc;

/// One event as borrowed slices: what a row needs, without owning anything, so capture can
/// append straight from what it read and decoded.
#[derive(Debug, Clone, Copy)]
pub struct EventRef<'a> {
    /// `None` derives the standard id from the bus position.
    pub id: Option<&'a str>,
    pub bus: Bus,
    pub connection: &'a str,
    pub source: &'a str,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    pub sub_offset: Option<i64>,
    pub key: Option<&'a [u8]>,
    pub key_decoded: Option<&'a str>,
    pub headers: &'a [Header],
    pub timestamp_us: Option<i64>,
    pub captured_at_us: i64,
    pub payload: &'a [u8],
    pub size: i64,
    pub truncated: bool,
    pub schema: Option<&'a str>,
    pub encoding: Encoding,
    pub decoded: Option<&'a str>,
    pub payload_text: Option<&'a str>,
    pub decode_error: Option<&'a str>,
    /// Bus properties as a JSON object (AMQP exchange, routing key, message properties).
    pub properties: Option<&'a str>,
}

impl<'a> EventRef<'a> {
    pub fn of(e: &'a Event) -> Self {
        EventRef {
            id: Some(&e.id),
            bus: e.bus,
            connection: &e.connection,
            source: &e.source,
            partition: e.partition,
            offset: e.offset,
            sub_offset: e.sub_offset,
            key: e.key.as_deref(),
            key_decoded: e.key_decoded.as_deref(),
            headers: &e.headers,
            timestamp_us: e.timestamp_us,
            captured_at_us: e.captured_at_us,
            payload: &e.payload,
            size: e.size,
            truncated: e.truncated,
            schema: e.schema.as_deref(),
            encoding: e.encoding,
            decoded: e.decoded.as_deref(),
            payload_text: e.payload_text.as_deref(),
            decode_error: e.decode_error.as_deref(),
            properties: e.properties.as_deref(),
        }
    }

    /// Bytes this row adds to a batch, roughly (for the flush-by-size rule).
    pub(crate) fn weight(&self) -> usize {
        self.payload.len()
            + self.decoded.map_or(0, str::len)
            + self.payload_text.map_or(0, str::len)
            + self.properties.map_or(0, str::len)
            + 64
    }
}

/// Column builders for a batch of rows, appended to one event at a time.
pub(crate) struct RowBuilder {
    with_partition_columns: bool,
    rows: usize,
    id: StringBuilder,
    bus: StringBuilder,
    connection: StringBuilder,
    source: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    key: BinaryBuilder,
    key_decoded: StringBuilder,
    headers: ListBuilder<StructBuilder>,
    timestamp: TimestampMicrosecondBuilder,
    captured_at: TimestampMicrosecondBuilder,
    payload: BinaryBuilder,
    payload_text: StringBuilder,
    size: Int64Builder,
    truncated: BooleanBuilder,
    schema: StringBuilder,
    encoding: StringBuilder,
    decoded: StringBuilder,
    decode_error: StringBuilder,
    properties: StringBuilder,
    sub_offset: Int64Builder,
}

impl RowBuilder {
    pub(crate) fn new(with_partition_columns: bool) -> Self {
        RowBuilder {
            with_partition_columns,
            rows: 0,
            id: StringBuilder::new(),
            bus: StringBuilder::new(),
            connection: StringBuilder::new(),
            source: StringBuilder::new(),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            key: BinaryBuilder::new(),
            key_decoded: StringBuilder::new(),
            headers: ListBuilder::new(StructBuilder::from_fields(header_fields(), 0))
                .with_field(Arc::new(header_item())),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            captured_at: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            payload: BinaryBuilder::new(),
            payload_text: StringBuilder::new(),
            size: Int64Builder::new(),
            truncated: BooleanBuilder::new(),
            schema: StringBuilder::new(),
            encoding: StringBuilder::new(),
            decoded: StringBuilder::new(),
            decode_error: StringBuilder::new(),
            properties: StringBuilder::new(),
            sub_offset: Int64Builder::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.rows
    }

    pub(crate) fn append(&mut self, e: &EventRef<'_>) {
        use std::fmt::Write as _;
        match e.id {
            Some(id) => self.id.append_value(id),
            None => {
                // The same text as `sluice_model::event_id`, written without a temporary String.
                let _ = write!(self.id, "{}:{}/{}/", e.bus.as_str(), e.connection, e.source);
                if let Some(p) = e.partition {
                    let _ = write!(self.id, "{p}");
                }
                self.id.write_char('/').ok();
                if let Some(o) = e.offset {
                    let _ = write!(self.id, "{o}");
                    if let Some(s) = e.sub_offset {
                        let _ = write!(self.id, "-{s}");
                    }
                }
                self.id.append_value("");
            }
        }
        self.bus.append_value(e.bus.as_str());
        if self.with_partition_columns {
            self.connection.append_value(e.connection);
            self.source.append_value(e.source);
        }
        self.partition.append_option(e.partition);
        self.offset.append_option(e.offset);
        self.key.append_option(e.key);
        self.key_decoded.append_option(e.key_decoded);
        let items = self.headers.values();
        for h in e.headers {
            items
                .field_builder::<StringBuilder>(0)
                .expect("key field")
                .append_value(&h.key);
            items
                .field_builder::<BinaryBuilder>(1)
                .expect("value field")
                .append_option(h.value.as_deref());
            items.append(true);
        }
        self.headers.append(true);
        self.timestamp.append_option(e.timestamp_us);
        self.captured_at.append_value(e.captured_at_us);
        self.payload.append_value(e.payload);
        self.payload_text.append_option(e.payload_text);
        self.size.append_value(e.size);
        self.truncated.append_value(e.truncated);
        self.schema.append_option(e.schema);
        self.encoding.append_value(e.encoding.as_str());
        self.decoded.append_option(e.decoded);
        self.decode_error.append_option(e.decode_error);
        self.properties.append_option(e.properties);
        self.sub_offset.append_option(e.sub_offset);
        self.rows += 1;
    }

    /// The rows appended so far as one batch, its columns in the order the column table gives
    /// them; the builder is empty afterwards.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        self.rows = 0;
        let mut built: Vec<(&str, ArrayRef)> = vec![
            (col::ID.name, Arc::new(self.id.finish())),
            (col::BUS.name, Arc::new(self.bus.finish())),
            (col::PARTITION.name, Arc::new(self.partition.finish())),
            (col::OFFSET.name, Arc::new(self.offset.finish())),
            (col::KEY.name, Arc::new(self.key.finish())),
            (col::KEY_DECODED.name, Arc::new(self.key_decoded.finish())),
            (col::HEADERS.name, Arc::new(self.headers.finish())),
            (col::TIMESTAMP.name, Arc::new(self.timestamp.finish())),
            (col::CAPTURED_AT.name, Arc::new(self.captured_at.finish())),
            (col::PAYLOAD.name, Arc::new(self.payload.finish())),
            (col::PAYLOAD_TEXT.name, Arc::new(self.payload_text.finish())),
            (col::SIZE.name, Arc::new(self.size.finish())),
            (col::TRUNCATED.name, Arc::new(self.truncated.finish())),
            (col::SCHEMA.name, Arc::new(self.schema.finish())),
            (col::ENCODING.name, Arc::new(self.encoding.finish())),
            (col::DECODED.name, Arc::new(self.decoded.finish())),
            (col::DECODE_ERROR.name, Arc::new(self.decode_error.finish())),
            (col::PROPERTIES.name, Arc::new(self.properties.finish())),
            (col::SUB_OFFSET.name, Arc::new(self.sub_offset.finish())),
        ];
        if self.with_partition_columns {
            built.push((col::CONNECTION.name, Arc::new(self.connection.finish())));
            built.push((col::SOURCE.name, Arc::new(self.source.finish())));
        }
        let schema = arrow_schema(self.with_partition_columns);
        let mut columns = Vec::with_capacity(built.len());
        for field in schema.fields() {
            let i = built
                .iter()
                .position(|(name, _)| name == field.name())
                .ok_or_else(|| {
                    ArrowError::SchemaError(format!("no builder for column {}", field.name()))
                })?;
            columns.push(built.swap_remove(i).1);
        }
        if let Some((name, _)) = built.first() {
            return Err(ArrowError::SchemaError(format!(
                "column {name} is built but not in the column table"
            )));
        }
        RecordBatch::try_new(schema, columns)
    }
}
