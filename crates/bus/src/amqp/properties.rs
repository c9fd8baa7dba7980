//! AMQP message properties and headers to and from Sluice's shapes: properties become one JSON
//! object (the event's `properties`, searchable as `property.NAME`), headers become byte
//! headers like Kafka's. The same names come back when publishing.

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::BasicProperties;
use serde_json::{json, Map, Value};
use sluice_model::Header;

/// A header value as bytes: strings as they are, numbers and booleans as text, nested tables
/// and arrays (e.g. `x-death`) as JSON.
fn value_bytes(v: &AMQPValue) -> Vec<u8> {
    match v {
        AMQPValue::LongString(s) => s.as_bytes().to_vec(),
        AMQPValue::ShortString(s) => s.as_str().as_bytes().to_vec(),
        AMQPValue::ByteArray(b) => b.as_slice().to_vec(),
        other => match to_json(other) {
            Value::String(s) => s.into_bytes(),
            j => j.to_string().into_bytes(),
        },
    }
}

fn to_json(v: &AMQPValue) -> Value {
    match v {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(n) => json!(n),
        AMQPValue::Double(n) => json!(n),
        AMQPValue::DecimalValue(d) => json!(format!("{d:?}")),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => json!(String::from_utf8_lossy(s.as_bytes())),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(to_json).collect()),
        AMQPValue::Timestamp(t) => json!(t),
        AMQPValue::FieldTable(t) => table_json(t),
        AMQPValue::ByteArray(b) => json!(String::from_utf8_lossy(b.as_slice())),
        AMQPValue::Void => Value::Null,
    }
}

fn table_json(t: &FieldTable) -> Value {
    Value::Object(
        t.inner()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), to_json(v)))
            .collect(),
    )
}

pub(crate) fn headers_of(props: &BasicProperties) -> Vec<Header> {
    props
        .headers()
        .as_ref()
        .map(|t| {
            t.inner()
                .iter()
                .map(|(k, v)| Header {
                    key: k.as_str().to_string(),
                    value: Some(value_bytes(v)),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The event's `properties` object for a delivery.
pub(crate) fn json_of(
    exchange: &str,
    routing_key: &str,
    redelivered: bool,
    p: &BasicProperties,
) -> String {
    let mut m = Map::new();
    m.insert("exchange".into(), json!(exchange));
    m.insert("routing_key".into(), json!(routing_key));
    if redelivered {
        m.insert("redelivered".into(), json!(true));
    }
    let mut text = |k: &str, v: &Option<ShortString>| {
        if let Some(v) = v {
            m.insert(k.into(), json!(v.as_str()));
        }
    };
    text("content_type", p.content_type());
    text("content_encoding", p.content_encoding());
    text("correlation_id", p.correlation_id());
    text("reply_to", p.reply_to());
    text("expiration", p.expiration());
    text("message_id", p.message_id());
    text("type", p.kind());
    text("user_id", p.user_id());
    text("app_id", p.app_id());
    text("cluster_id", p.cluster_id());
    if let Some(v) = p.delivery_mode() {
        m.insert("delivery_mode".into(), json!(v));
    }
    if let Some(v) = p.priority() {
        m.insert("priority".into(), json!(v));
    }
    if let Some(v) = p.timestamp() {
        m.insert("timestamp".into(), json!(v));
    }
    Value::Object(m).to_string()
}

/// Properties to publish with: the source's (from `properties` JSON) where there are any,
/// headers as a table, and the event time when no AMQP timestamp came along.
pub(crate) fn to_publish(
    properties: Option<&str>,
    headers: &[Header],
    timestamp_us: Option<i64>,
) -> BasicProperties {
    let src: Map<String, Value> = properties
        .and_then(|p| serde_json::from_str(p).ok())
        .unwrap_or_default();
    let s = |k: &str| src.get(k).and_then(Value::as_str).map(ShortString::from);
    let n = |k: &str| src.get(k).and_then(Value::as_u64);
    let mut p = BasicProperties::default();
    if let Some(v) = s("content_type") {
        p = p.with_content_type(v);
    }
    if let Some(v) = s("content_encoding") {
        p = p.with_content_encoding(v);
    }
    if let Some(v) = s("correlation_id") {
        p = p.with_correlation_id(v);
    }
    if let Some(v) = s("reply_to") {
        p = p.with_reply_to(v);
    }
    if let Some(v) = s("expiration") {
        p = p.with_expiration(v);
    }
    if let Some(v) = s("message_id") {
        p = p.with_message_id(v);
    }
    if let Some(v) = s("type") {
        p = p.with_type(v);
    }
    if let Some(v) = s("app_id") {
        p = p.with_app_id(v);
    }
    // user_id is checked by RabbitMQ against the publishing user, so it is not sent again.
    if let Some(v) = n("delivery_mode") {
        p = p.with_delivery_mode(v.min(2) as u8);
    }
    if let Some(v) = n("priority") {
        p = p.with_priority(v.min(255) as u8);
    }
    match n("timestamp") {
        Some(t) => p = p.with_timestamp(t),
        None => {
            if let Some(us) = timestamp_us.filter(|t| *t >= 0) {
                p = p.with_timestamp((us / 1_000_000) as u64);
            }
        }
    }
    let mut table = FieldTable::default();
    for h in headers {
        let v = match &h.value {
            Some(b) => AMQPValue::LongString(LongString::from(b.clone())),
            None => AMQPValue::Void,
        };
        table.insert(h.key.as_str().into(), v);
    }
    p.with_headers(table)
}
