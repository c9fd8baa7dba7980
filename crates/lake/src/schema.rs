//! The Parquet row shape of an event. Partition columns (`connection`, `source`, `date`) live
//! in the folder names of the lake, and inside the file only for standalone exports.

use arrow::array::{
    ArrayRef, BinaryBuilder, BooleanBuilder, Int32Builder, Int64Builder, ListBuilder,
    StringBuilder, StructBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;
use sluice_model::Event;
use std::sync::Arc;

fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
    ])
}

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub(crate) fn arrow_schema(with_partition_columns: bool) -> Arc<Schema> {
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("bus", DataType::Utf8, false),
    ];
    if with_partition_columns {
        fields.push(Field::new("connection", DataType::Utf8, false));
        fields.push(Field::new("source", DataType::Utf8, false));
    }
    fields.extend([
        Field::new("partition", DataType::Int32, true),
        Field::new("offset", DataType::Int64, true),
        Field::new("key", DataType::Binary, true),
        Field::new("key_decoded", DataType::Utf8, true),
        Field::new(
            "headers",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(header_fields()),
                true,
            ))),
            false,
        ),
        Field::new("timestamp", ts(), true),
        Field::new("captured_at", ts(), false),
        Field::new("payload", DataType::Binary, false),
        Field::new("payload_text", DataType::Utf8, true),
        Field::new("size", DataType::Int64, false),
        Field::new("truncated", DataType::Boolean, false),
        Field::new("schema", DataType::Utf8, true),
        Field::new("encoding", DataType::Utf8, false),
        Field::new("decoded", DataType::Utf8, true),
        Field::new("decode_error", DataType::Utf8, true),
    ]);
    Arc::new(Schema::new(fields))
}

pub(crate) fn to_batch(
    events: &[Event],
    with_partition_columns: bool,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let schema = arrow_schema(with_partition_columns);
    let n = events.len();
    let mut id = StringBuilder::with_capacity(n, n * 32);
    let mut bus = StringBuilder::new();
    let mut connection = StringBuilder::new();
    let mut source = StringBuilder::new();
    let mut partition = Int32Builder::with_capacity(n);
    let mut offset = Int64Builder::with_capacity(n);
    let mut key = BinaryBuilder::new();
    let mut key_decoded = StringBuilder::new();
    let mut headers = ListBuilder::new(StructBuilder::from_fields(header_fields(), 0)).with_field(
        Arc::new(Field::new("item", DataType::Struct(header_fields()), true)),
    );
    let mut timestamp = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut captured_at = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut payload = BinaryBuilder::with_capacity(n, events.iter().map(|e| e.payload.len()).sum());
    let mut payload_text = StringBuilder::new();
    let mut size = Int64Builder::with_capacity(n);
    let mut truncated = BooleanBuilder::with_capacity(n);
    let mut schema_col = StringBuilder::new();
    let mut encoding = StringBuilder::new();
    let mut decoded = StringBuilder::new();
    let mut decode_error = StringBuilder::new();

    for e in events {
        id.append_value(&e.id);
        bus.append_value(e.bus.as_str());
        connection.append_value(&e.connection);
        source.append_value(&e.source);
        partition.append_option(e.partition);
        offset.append_option(e.offset);
        key.append_option(e.key.as_deref());
        key_decoded.append_option(e.key_decoded.as_deref());
        let items = headers.values();
        for h in &e.headers {
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
        headers.append(true);
        timestamp.append_option(e.timestamp_us);
        captured_at.append_value(e.captured_at_us);
        payload.append_value(&e.payload);
        payload_text.append_option(e.payload_text.as_deref());
        size.append_value(e.size);
        truncated.append_value(e.truncated);
        schema_col.append_option(e.schema.as_deref());
        encoding.append_value(e.encoding.as_str());
        decoded.append_option(e.decoded.as_deref());
        decode_error.append_option(e.decode_error.as_deref());
    }

    let mut columns: Vec<ArrayRef> = vec![Arc::new(id.finish()), Arc::new(bus.finish())];
    if with_partition_columns {
        columns.push(Arc::new(connection.finish()));
        columns.push(Arc::new(source.finish()));
    }
    let rest: Vec<ArrayRef> = vec![
        Arc::new(partition.finish()),
        Arc::new(offset.finish()),
        Arc::new(key.finish()),
        Arc::new(key_decoded.finish()),
        Arc::new(headers.finish()),
        Arc::new(timestamp.finish()),
        Arc::new(captured_at.finish()),
        Arc::new(payload.finish()),
        Arc::new(payload_text.finish()),
        Arc::new(size.finish()),
        Arc::new(truncated.finish()),
        Arc::new(schema_col.finish()),
        Arc::new(encoding.finish()),
        Arc::new(decoded.finish()),
        Arc::new(decode_error.finish()),
    ];
    columns.extend(rest);
    RecordBatch::try_new(schema, columns)
}
