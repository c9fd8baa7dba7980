//! Topic names and filters, and the mapping between MQTT messages and Sluice's: a received
//! PUBLISH becomes `properties` JSON (topic, QoS, flags, MQTT 5 properties) and `headers`
//! (MQTT 5 user properties, in order, duplicates kept); an outgoing message becomes a PUBLISH.

use super::client::{Publication, Received};
use base64::Engine;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use serde_json::{json, Map, Value};
use sluice_model::{Header, Outgoing};

/// The QoS a message is published with when nothing says otherwise.
pub(crate) const DEFAULT_QOS: u8 = 1;

/// Why `topic` cannot be published to, if it cannot.
pub(crate) fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("an MQTT topic cannot be empty".into());
    }
    if topic.len() > 65_535 {
        return Err("an MQTT topic is at most 65535 bytes".into());
    }
    if topic.contains(['+', '#']) {
        return Err(format!(
            "{topic:?} has a wildcard (+ or #): messages are published to one topic name"
        ));
    }
    if topic.contains('\0') {
        return Err(format!("{topic:?} contains a NUL character"));
    }
    Ok(())
}

/// Why `filter` cannot be subscribed to, if it cannot: `+` stands for one whole level, `#`
/// for the rest and only as the last level.
pub(crate) fn check_filter(filter: &str) -> Result<(), String> {
    if filter.is_empty() || filter.len() > 65_535 || filter.contains('\0') {
        return Err(format!(
            "{filter:?} is not a topic filter (1 to 65535 bytes, no NUL)"
        ));
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, l) in levels.iter().enumerate() {
        if l.contains('#') && (*l != "#" || i + 1 != levels.len()) {
            return Err(format!(
                "{filter:?}: # must be a whole level and the last one (a/#)"
            ));
        }
        if l.contains('+') && *l != "+" {
            return Err(format!("{filter:?}: + must be a whole level (a/+/c)"));
        }
    }
    Ok(())
}

/// Whether `topic` matches `filter`. Per the spec, a filter starting with a wildcard never
/// matches a topic starting with `$` (`#` does not see `$SYS/...`).
pub(crate) fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut t = topic.split('/');
    for f in filter.split('/') {
        match (f, t.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(l)) if f == l => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

/// `properties` of a received message: always topic, qos, retain and dup; the MQTT 5
/// properties that are present. Correlation data is binary, so it is kept in base64 (and as
/// text too when it is UTF-8, to search by).
pub(crate) fn json_of(m: &Received) -> String {
    let mut o = Map::new();
    o.insert("topic".into(), json!(m.topic));
    o.insert("qos".into(), json!(m.qos));
    o.insert("retain".into(), json!(m.retain));
    o.insert("dup".into(), json!(m.dup));
    if let Some(p) = &m.props {
        if let Some(v) = &p.content_type {
            o.insert("content_type".into(), json!(v));
        }
        if let Some(v) = &p.correlation_data {
            o.insert(
                "correlation_data".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(v)),
            );
            if let Ok(text) = std::str::from_utf8(v) {
                o.insert("correlation_text".into(), json!(text));
            }
        }
        if let Some(v) = &p.response_topic {
            o.insert("response_topic".into(), json!(v));
        }
        if let Some(v) = p.message_expiry_interval {
            o.insert("message_expiry_interval".into(), json!(v));
        }
        if let Some(v) = p.payload_format_indicator {
            o.insert("payload_format_indicator".into(), json!(v));
        }
        if !p.subscription_identifiers.is_empty() {
            o.insert(
                "subscription_identifiers".into(),
                json!(p.subscription_identifiers),
            );
        }
    }
    Value::Object(o).to_string()
}

/// MQTT 5 user properties as headers, in order, duplicates kept.
pub(crate) fn headers_of(m: &Received) -> Vec<Header> {
    m.props
        .iter()
        .flat_map(|p| p.user_properties.iter())
        .map(|(k, v)| Header {
            key: k.clone(),
            value: Some(v.as_bytes().to_vec()),
        })
        .collect()
}

/// The MQTT part of an outgoing message's properties: present when the event came from MQTT
/// (it has `topic` and `qos`); properties of other buses are not read as MQTT's.
fn mqtt_properties(msg: &Outgoing) -> Option<Map<String, Value>> {
    match serde_json::from_str(msg.properties.as_deref()?).ok()? {
        Value::Object(o) if o.contains_key("topic") && o.contains_key("qos") => Some(o),
        _ => None,
    }
}

/// The PUBLISH for `msg`: the original QoS (else QoS 1), retained only when the message asks
/// and the connection allows it, and for MQTT 5 its properties and headers as user
/// properties. MQTT 3.1.1 has nowhere to put headers or properties: they are not sent.
pub(crate) fn publication(
    msg: Outgoing,
    v5: bool,
    replay_retain: bool,
) -> Result<Publication, String> {
    let p = mqtt_properties(&msg);
    let get = |k: &str| p.as_ref().and_then(|o| o.get(k));
    let qos = match get("qos").and_then(Value::as_u64) {
        Some(q @ 0..=2) => q as u8,
        Some(q) => return Err(format!("QoS {q} is not 0, 1 or 2")),
        None => DEFAULT_QOS,
    };
    let retain = replay_retain && get("retain").and_then(Value::as_bool) == Some(true);
    let props = if v5 {
        let text = |k: &str| get(k).and_then(Value::as_str).map(str::to_string);
        let mut user = Vec::with_capacity(msg.headers.len());
        for h in &msg.headers {
            let value = match &h.value {
                None => String::new(),
                Some(v) => String::from_utf8(v.clone()).map_err(|_| {
                    format!(
                        "header {:?} is not UTF-8 text: MQTT user properties are text",
                        h.key
                    )
                })?,
            };
            // A NUL in an MQTT string is a malformed packet, for which brokers disconnect.
            if h.key.contains('\0') || value.contains('\0') {
                return Err(format!(
                    "header {:?} contains a NUL character, which MQTT strings cannot hold",
                    h.key
                ));
            }
            user.push((h.key.clone(), value));
        }
        let correlation_data = match text("correlation_data") {
            Some(b) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| format!("correlation_data is not base64: {e}"))?,
            ),
            None => None,
        };
        Some(PublishProperties {
            payload_format_indicator: get("payload_format_indicator")
                .and_then(Value::as_u64)
                .and_then(|v| u8::try_from(v).ok()),
            message_expiry_interval: get("message_expiry_interval")
                .and_then(Value::as_u64)
                .and_then(|v| u32::try_from(v).ok()),
            topic_alias: None,
            response_topic: text("response_topic"),
            correlation_data: correlation_data.map(Into::into),
            user_properties: user,
            subscription_identifiers: Vec::new(),
            content_type: text("content_type"),
        })
    } else {
        None
    };
    Ok(Publication {
        topic: msg.target,
        qos,
        retain,
        payload: msg.payload,
        props,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(props: Option<PublishProperties>) -> Received {
        Received {
            topic: "plant/a/temp".into(),
            payload: b"21.5".to_vec(),
            qos: 2,
            retain: true,
            dup: false,
            props,
        }
    }

    fn v5_props() -> PublishProperties {
        PublishProperties {
            content_type: Some("application/json".into()),
            correlation_data: Some(vec![0xff, 0x01].into()),
            response_topic: Some("plant/replies".into()),
            message_expiry_interval: Some(60),
            payload_format_indicator: Some(1),
            user_properties: vec![
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("a".into(), "3".into()),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn filters_and_topics() {
        assert!(check_filter("plant/+/temp").is_ok() && check_filter("#").is_ok());
        assert!(check_filter("a/#/b").is_err() && check_filter("a/b+").is_err());
        assert!(check_filter("").is_err());
        assert!(check_topic("plant/a/temp").is_ok());
        assert!(check_topic("plant/+/temp").is_err() && check_topic("a/#").is_err());
        assert!(matches("plant/+/temp", "plant/a/temp"));
        assert!(!matches("plant/+/temp", "plant/a/b/temp"));
        assert!(matches("plant/#", "plant") && matches("plant/#", "plant/a/b"));
        assert!(!matches("#", "$SYS/broker/uptime") && !matches("+/broker", "$SYS/broker"));
        assert!(matches("$SYS/#", "$SYS/broker/uptime"));
    }

    #[test]
    fn received_properties_and_headers() {
        let m = received(Some(v5_props()));
        let v: Value = serde_json::from_str(&json_of(&m)).unwrap();
        assert_eq!(v["topic"], "plant/a/temp");
        assert_eq!(v["qos"], 2);
        assert_eq!(v["retain"], true);
        assert_eq!(v["correlation_data"], "/wE=");
        assert!(v.get("correlation_text").is_none(), "not UTF-8");
        assert_eq!(v["message_expiry_interval"], 60);
        let h: Vec<(String, String)> = headers_of(&m)
            .into_iter()
            .map(|h| (h.key, String::from_utf8(h.value.unwrap()).unwrap()))
            .collect();
        assert_eq!(
            h,
            [("a", "1"), ("b", "2"), ("a", "3")].map(|(k, v)| (k.into(), v.into()))
        );
        let plain: Value = serde_json::from_str(&json_of(&received(None))).unwrap();
        assert_eq!(plain.as_object().unwrap().len(), 4);
    }

    fn outgoing(properties: Option<String>, headers: Vec<Header>) -> Outgoing {
        Outgoing {
            target: "replayed/here".into(),
            partition: None,
            key: None,
            headers,
            timestamp_us: None,
            payload: b"x".to_vec(),
            properties,
            routing_key: None,
            event_id: "e1".into(),
        }
    }

    #[test]
    fn round_trip_keeps_qos_properties_and_user_properties() {
        let m = received(Some(v5_props()));
        let out = outgoing(Some(json_of(&m)), headers_of(&m));
        let p = publication(out.clone(), true, false).unwrap();
        assert_eq!(
            (p.qos, p.retain),
            (2, false),
            "retained only when the connection allows"
        );
        let props = p.props.unwrap();
        let want = v5_props();
        assert_eq!(props.user_properties, want.user_properties);
        assert_eq!(props.correlation_data, want.correlation_data);
        assert_eq!(props.content_type, want.content_type);
        assert_eq!(props.response_topic, want.response_topic);
        assert_eq!(props.message_expiry_interval, Some(60));
        assert!(publication(out.clone(), true, true).unwrap().retain);
        let v4 = publication(out, false, true).unwrap();
        assert!(v4.props.is_none() && v4.qos == 2);
    }

    #[test]
    fn other_buses_properties_are_not_mqtt_ones() {
        let amqp = r#"{"exchange":"x","routing_key":"k","content_type":"text/plain"}"#;
        let p = publication(outgoing(Some(amqp.into()), vec![]), true, true).unwrap();
        assert_eq!(p.qos, DEFAULT_QOS);
        assert!(p.props.unwrap().content_type.is_none());
        let binary = Header {
            key: "bin".into(),
            value: Some(vec![0xff]),
        };
        let err = publication(outgoing(None, vec![binary]), true, false)
            .err()
            .unwrap();
        assert!(err.contains("not UTF-8"));
    }
}
