//! The Kafka connector against librdkafka's in-process mock cluster: start positions, the end
//! offsets behind `--stop-at-end`, headers that are not UTF-8, and delivery reports. (The
//! mock cluster does not answer offsets-for-times, so `@time` seeks are not covered here.)

use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::ClientConfig;
use sluice_bus::kafka::{Kafka, KafkaConfig};
use sluice_bus::{Connector, Reader};
use sluice_model::{Header, Outgoing, StartFrom};
use std::time::{Duration, Instant};

fn kafka(cluster: &MockCluster<'_, rdkafka::producer::DefaultProducerContext>) -> Kafka {
    Kafka {
        name: "mock".into(),
        config: KafkaConfig {
            brokers: cluster.bootstrap_servers(),
            sasl: None,
            tls: None,
            max_message_bytes: None,
        },
    }
}

fn fill(brokers: &str, topic: &str, per_partition: i64) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    for part in 0..2 {
        for i in 0..per_partition {
            let payload = format!("p{part}-{i}");
            let key = format!("k{i}");
            p.send(
                BaseRecord::to(topic)
                    .partition(part)
                    .payload(&payload)
                    .key(&key),
            )
            .unwrap();
        }
    }
    p.flush(Duration::from_secs(10)).unwrap();
}

fn read_all(r: &mut dyn Reader) -> Vec<sluice_model::Message> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !r.at_end() && Instant::now() < deadline {
        out.extend(r.poll(1000, Duration::from_millis(100)).unwrap());
    }
    out
}

#[test]
fn start_positions_and_end_offsets() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("t", 2, 1).unwrap();
    fill(&cluster.bootstrap_servers(), "t", 5);
    let k = kafka(&cluster);

    let info = k.source("t", Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(
        info.partitions.iter().map(|p| p.high).collect::<Vec<_>>(),
        vec![5, 5]
    );
    assert!(k
        .source("missing", Duration::from_secs(5))
        .unwrap()
        .is_none());

    let mut r = k
        .reader(&["t".into()], StartFrom::Beginning, &Default::default())
        .unwrap();
    let all = read_all(r.as_mut());
    assert_eq!(
        all.len(),
        10,
        "stops exactly at the end offsets seen at the start"
    );

    let mut r = k
        .reader(&["t".into()], StartFrom::Last(2), &Default::default())
        .unwrap();
    let last = read_all(r.as_mut());
    assert_eq!(
        last.iter()
            .map(|m| m.offset.unwrap())
            .collect::<std::collections::BTreeSet<_>>(),
        [3, 4].into()
    );
    assert_eq!(last.len(), 4);

    let mut r = k
        .reader(&["t".into()], StartFrom::Offset(4), &Default::default())
        .unwrap();
    assert_eq!(read_all(r.as_mut()).len(), 2);

    let r = k
        .reader(&["t".into()], StartFrom::End, &Default::default())
        .unwrap();
    assert!(r.at_end(), "nothing to read from the end");

    let err = k
        .reader(&["nope".into()], StartFrom::Beginning, &Default::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("unknown topic \"nope\""), "{err}");
}

#[test]
fn writer_reports_deliveries_and_keeps_bytes() {
    let cluster = MockCluster::new(1).unwrap();
    cluster.create_topic("out", 2, 1).unwrap();
    let k = kafka(&cluster);
    let mut w = k.writer().unwrap();
    for i in 0..20u8 {
        w.send(Outgoing {
            properties: None,
            routing_key: None,
            target: "out".into(),
            partition: Some(i32::from(i % 2)),
            key: Some(vec![0xff, i]),
            headers: vec![
                Header {
                    key: "bin".into(),
                    value: Some(vec![0xc3, 0x28]),
                },
                Header {
                    key: "none".into(),
                    value: None,
                },
            ],
            timestamp_us: Some(1_795_168_800_000_000 + i64::from(i) * 1000),
            payload: vec![i; 3],
            event_id: format!("e{i}"),
        })
        .unwrap();
    }
    let d = w.flush(Duration::from_secs(10)).unwrap();
    assert_eq!((d.sent, d.failed), (20, 0));

    let mut r = k
        .reader(&["out".into()], StartFrom::Beginning, &Default::default())
        .unwrap();
    let got = read_all(r.as_mut());
    assert_eq!(got.len(), 20);
    let m = got
        .iter()
        .find(|m| m.key.as_deref() == Some(&[0xff, 7][..]))
        .unwrap();
    assert_eq!(m.partition, Some(1));
    assert_eq!(m.payload, vec![7; 3]);
    assert_eq!(m.headers[0].value.as_deref(), Some(&[0xc3, 0x28][..]));
    assert_eq!(
        m.headers[1],
        Header {
            key: "none".into(),
            value: None
        }
    );
    assert_eq!(m.timestamp_us, Some(1_795_168_800_007_000));

    let bad = w.send(Outgoing {
        properties: None,
        routing_key: None,
        target: "out".into(),
        partition: Some(9),
        key: None,
        headers: vec![],
        timestamp_us: None,
        payload: b"x".to_vec(),
        event_id: "bad".into(),
    });
    let d = w.flush(Duration::from_secs(10)).unwrap();
    assert!(
        bad.is_err() || d.failed == 1,
        "a missing partition is an error, not a silent drop"
    );
}

#[test]
fn unreachable_brokers_fail_fast_with_a_reason() {
    let k = Kafka {
        name: "dead".into(),
        config: KafkaConfig {
            brokers: "127.0.0.1:1".into(),
            sasl: None,
            tls: None,
            max_message_bytes: None,
        },
    };
    let start = Instant::now();
    let err = k.check(Duration::from_secs(3)).unwrap_err().to_string();
    assert!(start.elapsed() < Duration::from_secs(6));
    assert!(
        err.contains("unreachable") && err.contains("127.0.0.1:1"),
        "{err}"
    );
}
