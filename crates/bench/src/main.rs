//! Baselines and data generators for BENCHMARKS.md (driven by scripts/bench.sh): a raw
//! librdkafka producer and a raw counting consumer, so Sluice's capture and replay are measured
//! as ratios against the same client library on the same broker in the same run.
//!
//!   sluice-bench produce BROKER TOPIC COUNT     raw produce of ~200-byte shop.v1.Order messages
//!   sluice-bench consume BROKER TOPIC COUNT     raw consume that only counts (assign, no group)
//!   sluice-bench synth-lake LAKE COUNT          writes COUNT realistic events straight into a lake
//!   sluice-bench decode COUNT                   per-core decode rates: prost-reflect's own
//!                                               DynamicMessage + serde (the baseline) against
//!                                               Sluice's decoder, Avro and schemaless protobuf

mod buses;
mod cdc;
mod collect;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

fn example_schemas() -> prost_types::FileDescriptorSet {
    // Relative to where scripts/bench.sh runs (the repository root), not a path compiled in:
    // build artifacts are shared between clones.
    let root = std::path::PathBuf::from(
        std::env::var("SLUICE_PROTOS").unwrap_or_else(|_| "protos".into()),
    );
    sluice_codec::compile_paths(&[root], &[]).set
}

fn payloads() -> Vec<(Vec<u8>, String)> {
    let set =
        sluice_codec::SchemaSet::from_sets([example_schemas()]).expect("example schemas compile");
    let codec = set.codec("shop.v1.Order").expect("Order");
    (0..1000)
        .map(|i| {
            let json = serde_json::json!({
                "id": format!("order-{i:08}-2026-11-20"),
                "customer": {"id": (i * 7919) % 100_000, "name": format!("Customer Number {i}"), "email": format!("customer{i}@example.com")},
                "amountCents": 1000 + i, "status": (["PAID", "FAILED", "PENDING", "RETRY"][i % 4]),
                "createdAt": "2026-11-20T10:00:00Z",
                "items": [{"sku": format!("SKU-{:05}", i % 977), "quantity": 2, "unitPrice": 12.5}, {"sku": "SKU-00042", "quantity": 1, "unitPrice": 3.25}]
            })
            .to_string();
            (codec.encode_from_json(&json).expect("encodes"), json)
        })
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("produce") => produce(
            &args[2],
            &args[3],
            args[4].parse().unwrap(),
            args.get(5).is_some_and(|a| a == "replay-headers"),
        ),
        Some("consume") => consume(&args[2], &args[3], args[4].parse().unwrap()),
        Some("synth-lake") => synth(&args[2], args[3].parse().unwrap()),
        Some("reader") => reader(&args[2], &args[3], args[4].parse().unwrap()),
        Some("read-in-order") => read_in_order(&args[2]),
        Some("decode") => decode(args.get(2).map_or(300_000, |n| n.parse().unwrap())),
        _ if buses::main(&args) => {}
        _ if collect::main(&args) => {}
        _ if cdc::main(&args) => {}
        _ => {
            eprintln!(
                "usage: sluice-bench nats-*|redis-*|mqtt-* (see buses.rs) | collect-grpc ADDR TOKEN COUNT STREAMS [unary] | cdc-raw HOST PORT DB SLOT PUBLICATION COUNT | produce BROKER TOPIC COUNT [replay-headers] | consume BROKER TOPIC COUNT | synth-lake LAKE COUNT | read-in-order LAKE | decode [N]"
            );
            std::process::exit(2);
        }
    }
}

/// Replay's read alone: every event of a lake, oldest first, as replay reads them (no bus).
fn read_in_order(lake: &str) {
    let lake = sluice_lake::Lake::open(lake).expect("lake");
    let q = sluice_lake::Query::open(&lake).expect("query");
    let filter = sluice_filter::to_sql("", 0).expect("filter");
    let start = Instant::now();
    let (mut n, mut bytes) = (0u64, 0usize);
    q.for_each_in_order(&filter, None, sluice_lake::Columns::ForSending, |e| {
        n += 1;
        bytes += e.payload.len();
        true
    })
    .expect("read");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"op\":\"read-in-order\",\"count\":{n},\"bytes\":{bytes},\"seconds\":{secs:.3},\"rate\":{:.0}}}",
        n as f64 / secs
    );
}

/// `replay_headers`: each message also carries the two headers and the timestamp replay
/// adds, so the baseline sends the same bytes replay does.
fn produce(broker: &str, topic: &str, count: u64, replay_headers: bool) {
    let msgs = payloads();
    eprintln!("payload size ~{} bytes", msgs[0].0.len());
    let p: ThreadedProducer<_> = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "500000")
        .create()
        .expect("producer");
    let start = Instant::now();
    for i in 0..count {
        let (payload, _) = &msgs[(i % 1000) as usize];
        let key = format!("k{i}");
        let mut rec = BaseRecord::to(topic).payload(payload).key(&key);
        if replay_headers {
            let id = format!(
                "0123456789abcdef:fedcba98:kafka:bench/{topic}/{}/{i}",
                i % 3
            );
            let source = format!("bench/{topic}/{}/{i}", i % 3);
            rec = rec
                .headers(
                    OwnedHeaders::new_with_capacity(2)
                        .insert(Header {
                            key: "sluice-replay-id",
                            value: Some(&id),
                        })
                        .insert(Header {
                            key: "sluice-source",
                            value: Some(&source),
                        }),
                )
                .timestamp(1_795_168_800_000 + i as i64);
        }
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
    p.flush(Duration::from_secs(120)).expect("flush");
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"op\":\"raw-produce\",\"count\":{count},\"seconds\":{secs:.3},\"rate\":{:.0}}}",
        count as f64 / secs
    );
}

fn consume(broker: &str, topic: &str, count: u64) {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", broker)
        .set("group.id", "sluice-bench")
        .set("enable.auto.commit", "false");
    // EXTRA="key=value,key=value" tries client settings against the baseline.
    for kv in std::env::var("EXTRA")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        if let Some((k, v)) = kv.split_once('=') {
            cfg.set(k, v);
        }
    }
    let c: BaseConsumer = cfg.create().expect("consumer");
    let md = c
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut tpl = TopicPartitionList::new();
    for p in md.topics()[0].partitions() {
        tpl.add_partition_offset(topic, p.id(), Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).expect("assign");
    let start = Instant::now();
    let mut n = 0u64;
    let mut bytes = 0u64;
    while n < count {
        if let Some(Ok(m)) = c.poll(Duration::from_secs(5)) {
            n += 1;
            bytes += rdkafka::Message::payload(&m).map_or(0, <[u8]>::len) as u64;
        } else if start.elapsed() > Duration::from_secs(600) {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{{\"op\":\"raw-consume\",\"count\":{n},\"bytes\":{bytes},\"seconds\":{secs:.3},\"rate\":{:.0}}}", n as f64 / secs);
}

/// Sluice's own Kafka reader alone (poll and copy, nothing else), to separate reading costs
/// from decoding and writing.
fn reader(broker: &str, topic: &str, count: u64) {
    use sluice_bus::Connector;
    let k = sluice_bus::kafka::Kafka {
        name: "bench".into(),
        config: sluice_bus::kafka::KafkaConfig {
            brokers: broker.into(),
            sasl: None,
            tls: None,
            max_message_bytes: None,
        },
    };
    let mut r = k
        .reader(
            &[topic.to_string()],
            sluice_model::StartFrom::Beginning,
            &Default::default(),
        )
        .expect("reader");
    let start = Instant::now();
    let mut n = 0u64;
    while n < count && start.elapsed() < Duration::from_secs(600) {
        n += r
            .poll(10_000, Duration::from_millis(100))
            .expect("poll")
            .len() as u64;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"op\":\"sluice-reader\",\"count\":{n},\"seconds\":{secs:.3},\"rate\":{:.0}}}",
        n as f64 / secs
    );
}

fn synth(lake: &str, count: u64) {
    let msgs = payloads();
    let lake = sluice_lake::Lake::open(lake).expect("lake");
    let mut w = sluice_lake::LakeWriter::new(
        lake,
        sluice_lake::FlushPolicy {
            max_rows: 500_000,
            ..Default::default()
        },
    );
    let t0 = 1_795_168_800_000_000i64;
    let start = Instant::now();
    for i in 0..count {
        let (payload, _) = &msgs[(i % 1000) as usize];
        let partition = (i % 6) as i32;
        let offset = (i / 6) as i64;
        // Canonical JSON as capture writes it, with values unique per event (ids, names,
        // emails) as in real traffic: repeating a few templates would flatter the sketches.
        let name = if i % 100_003 == 0 {
            "payment declined for Customer"
        } else {
            "Customer Number"
        };
        let decoded = format!(
            r#"{{"id":"order-{i:010}-2026-11-20","customer":{{"id":"{cid}","name":"{name} {i}","email":"customer{i}@example.com"}},"amountCents":"{amount}","status":"{status}","createdAt":"2026-11-20T10:00:00Z","items":[{{"sku":"SKU-{sku:05}","quantity":2,"unitPrice":12.5}},{{"sku":"SKU-00042","quantity":1,"unitPrice":3.25}}]}}"#,
            cid = (i * 7919) % 9_999_991 + 10_000,
            amount = 100_000 + i % 900_000,
            status = ["PAID", "FAILED", "PENDING", "RETRY"][(i % 4) as usize],
            sku = i % 977,
        );
        let e = sluice_model::Event {
            id: sluice_model::event_id(
                sluice_model::Bus::Kafka,
                "bench",
                "orders",
                Some(partition),
                Some(offset),
                None,
            ),
            bus: sluice_model::Bus::Kafka,
            connection: "bench".into(),
            source: "orders".into(),
            partition: Some(partition),
            offset: Some(offset),
            sub_offset: None,
            key: Some(format!("k{i}").into_bytes()),
            key_decoded: None,
            headers: vec![sluice_model::Header {
                key: "trace-id".into(),
                value: Some(format!("{i:016x}").into_bytes()),
            }],
            timestamp_us: Some(t0 + i as i64 * 1000),
            captured_at_us: t0,
            payload: payload.clone(),
            size: payload.len() as i64,
            truncated: false,
            schema: Some("shop.v1.Order".into()),
            encoding: sluice_model::Encoding::Protobuf,
            decoded: Some(decoded),
            payload_text: None,
            decode_error: None,
            properties: None,
        };
        w.push(e).expect("push");
    }
    w.flush().expect("flush");
    println!(
        "{{\"op\":\"synth-lake\",\"count\":{count},\"seconds\":{:.3}}}",
        start.elapsed().as_secs_f64()
    );
}

/// An Avro record shaped like shop.v1.Order, for a like-for-like Avro figure.
const ORDER_AVSC: &str = r#"{"type":"record","name":"Order","namespace":"shop.avro","fields":[
  {"name":"id","type":"string"},
  {"name":"customer","type":{"type":"record","name":"Customer","fields":[
    {"name":"id","type":"long"},{"name":"name","type":"string"},{"name":"email","type":"string"}]}},
  {"name":"amountCents","type":"long"},
  {"name":"status","type":{"type":"enum","name":"Status","symbols":["PENDING","PAID","FAILED","RETRY"]}},
  {"name":"createdAt","type":{"type":"long","logicalType":"timestamp-millis"}},
  {"name":"note","type":["null","string"],"default":null},
  {"name":"items","type":{"type":"array","items":{"type":"record","name":"Item","fields":[
    {"name":"sku","type":"string"},{"name":"quantity","type":"int"},{"name":"unitPrice","type":"double"}]}}}]}"#;

/// Runs `f` over the payloads `count` times on this one thread; prints messages/s and MB/s.
fn rate(label: &str, payloads: &[Vec<u8>], count: usize, mut f: impl FnMut(&[u8]) -> usize) -> f64 {
    let mut sink = 0usize;
    let mut bytes = 0usize;
    let start = Instant::now();
    for i in 0..count {
        let p = &payloads[i % payloads.len()];
        bytes += p.len();
        sink = sink.wrapping_add(f(p));
    }
    let secs = start.elapsed().as_secs_f64();
    let r = count as f64 / secs;
    println!(
        "{{\"op\":\"decode\",\"what\":\"{label}\",\"count\":{count},\"rate\":{r:.0},\"mb_per_s\":{:.1},\"json_bytes\":{sink}}}",
        bytes as f64 / secs / 1e6
    );
    r
}

/// Decodes `msgs` with prost-reflect's DynamicMessage + serde_json (the baseline) and with
/// Sluice's decoder for the same type; prints both rates and their ratio.
fn versus_baseline(
    what: &str,
    set: prost_types::FileDescriptorSet,
    type_name: &str,
    msgs: &[Vec<u8>],
    count: usize,
) {
    let pool = prost_reflect::DescriptorPool::from_file_descriptor_set(set.clone()).expect("pool");
    let desc = pool.get_message_by_name(type_name).expect("type");
    let set = sluice_codec::SchemaSet::from_sets([set]).expect("schemas");
    let decoder = sluice_codec::Decoder::typed(set.type_codec(type_name).expect("type"));
    // Warm both paths, then measure each twice, alternating, and keep the better run: the
    // machine is shared, and a neighbour's burst should not decide the ratio.
    let baseline = |b: &[u8]| {
        let m = prost_reflect::DynamicMessage::decode(desc.clone(), b).expect("decodes");
        serde_json::to_string(&m).expect("serializes").len()
    };
    let sluice = |b: &[u8]| decoder.decode(b, true).json.map_or(0, |j| j.len());
    rate("warm-up", msgs, count / 10, baseline);
    rate("warm-up", msgs, count / 10, sluice);
    let mut base = 0f64;
    let mut ours = 0f64;
    for _ in 0..2 {
        base = base.max(rate(
            &format!("prost-reflect DynamicMessage + serde_json (baseline){what}"),
            msgs,
            count,
            baseline,
        ));
        ours = ours.max(rate(
            &format!("sluice protobuf (mapped type){what}"),
            msgs,
            count,
            sluice,
        ));
    }
    let of = if what.is_empty() {
        String::new()
    } else {
        format!(",\"of\":\"{type_name}\"")
    };
    println!(
        "{{\"op\":\"decode\",\"what\":\"ratio\"{of},\"sluice_over_baseline\":{:.3}}}",
        ours / base
    );
}

/// OTLP's descriptors (with the googleapis types the codec tests use), built by
/// tests/protos/realworld/make.py and compiled in so the benchmark needs no Python.
const REALWORLD: &[u8] = include_bytes!("../../../tests/protos/realworld/realworld.binpb");

/// Export requests as an OpenTelemetry SDK sends them: one resource with its attributes, one
/// instrumentation scope, 10 spans of ~10 string/int/bool/double attributes, with events.
fn otlp_payloads() -> (prost_types::FileDescriptorSet, Vec<Vec<u8>>) {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(REALWORLD).expect("realworld.binpb");
    let pool = prost_reflect::DescriptorPool::from_file_descriptor_set(set.clone()).expect("pool");
    let desc = pool
        .get_message_by_name("opentelemetry.proto.trace.v1.TracesData")
        .expect("TracesData");
    let kv = |k: &str, v: serde_json::Value| serde_json::json!({"key": k, "value": v});
    let id = |n: u64, len: usize| {
        let bytes: Vec<u8> = (0..len)
            .map(|i| (n >> (i % 8 * 8)) as u8 ^ i as u8)
            .collect();
        base64(&bytes)
    };
    let msgs = (0..200u64)
        .map(|i| {
            let start = 1_795_168_800_000_000_000u64 + i * 1_000_000;
            let spans: Vec<serde_json::Value> = (0..10u64)
                .map(|s| {
                    serde_json::json!({
                        "traceId": id(i, 16), "spanId": id(i * 10 + s, 8), "parentSpanId": id(i * 10, 8),
                        "name": format!("GET /api/v1/orders/{}", (i * 31 + s) % 1000),
                        "kind": "SPAN_KIND_SERVER",
                        "startTimeUnixNano": (start + s * 1000).to_string(),
                        "endTimeUnixNano": (start + s * 1000 + 250_000 + s * 17).to_string(),
                        "attributes": [
                            kv("http.request.method", serde_json::json!({"stringValue": "GET"})),
                            kv("url.path", serde_json::json!({"stringValue": format!("/api/v1/orders/{}", s)})),
                            kv("url.scheme", serde_json::json!({"stringValue": "https"})),
                            kv("http.response.status_code", serde_json::json!({"intValue": (200 + (s % 3) * 100).to_string()})),
                            kv("server.address", serde_json::json!({"stringValue": "orders.internal.example.com"})),
                            kv("server.port", serde_json::json!({"intValue": "8443"})),
                            kv("network.protocol.version", serde_json::json!({"stringValue": "1.1"})),
                            kv("user_agent.original", serde_json::json!({"stringValue": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"})),
                            kv("http.route", serde_json::json!({"stringValue": "/api/v1/orders/{id}"})),
                            kv("sampled", serde_json::json!({"boolValue": s % 2 == 0})),
                            kv("db.duration_ms", serde_json::json!({"doubleValue": 1.25 + s as f64})),
                        ],
                        "events": [
                            {"timeUnixNano": (start + s * 1000 + 5000).to_string(), "name": "cache.miss",
                             "attributes": [kv("cache.key", serde_json::json!({"stringValue": format!("order:{i}:{s}")}))]},
                            {"timeUnixNano": (start + s * 1000 + 9000).to_string(), "name": "db.query",
                             "attributes": [kv("db.statement", serde_json::json!({"stringValue": "SELECT * FROM orders WHERE id = $1"})),
                                            kv("db.rows", serde_json::json!({"intValue": "1"}))]},
                        ],
                        "status": {"code": if s % 7 == 3 { "STATUS_CODE_ERROR" } else { "STATUS_CODE_OK" }},
                    })
                })
                .collect();
            let json = serde_json::json!({"resourceSpans": [{
                "resource": {"attributes": [
                    kv("service.name", serde_json::json!({"stringValue": "orders-api"})),
                    kv("service.version", serde_json::json!({"stringValue": "2.14.1"})),
                    kv("deployment.environment", serde_json::json!({"stringValue": "production"})),
                    kv("host.name", serde_json::json!({"stringValue": format!("orders-api-{}", i % 12)})),
                    kv("process.pid", serde_json::json!({"intValue": (4000 + i % 50).to_string()})),
                    kv("telemetry.sdk.language", serde_json::json!({"stringValue": "go"})),
                ]},
                "scopeSpans": [{"scope": {"name": "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "version": "0.53.0"},
                                "spans": spans}],
                "schemaUrl": "https://opentelemetry.io/schemas/1.26.0",
            }]});
            let text = json.to_string();
            let mut de = serde_json::Deserializer::from_str(&text);
            let m = prost_reflect::DynamicMessage::deserialize(desc.clone(), &mut de).expect("OTLP JSON");
            m.encode_to_vec()
        })
        .collect();
    (set, msgs)
}

/// Standard padded base64, for the ids in OTLP's JSON form.
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            s.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    s
}

fn decode(count: usize) {
    let msgs: Vec<Vec<u8>> = payloads().into_iter().map(|(b, _)| b).collect();
    versus_baseline("", example_schemas(), "shop.v1.Order", &msgs, count);
    let (otlp, spans) = otlp_payloads();
    // Each OTLP message holds 10 spans (~6.4 kB, ~45 times an Order): a tenth of the count.
    versus_baseline(
        " (OTLP TracesData, 10 spans)",
        otlp,
        "opentelemetry.proto.trace.v1.TracesData",
        &spans,
        (count / 10).max(100),
    );

    let avro = sluice_codec::AvroSchema::parse(ORDER_AVSC, &[]).expect("avsc");
    let avro_msgs: Vec<Vec<u8>> = (0..1000u64)
        .map(|i| {
            let json = serde_json::json!({
                "id": format!("order-{i:08}-2026-11-20"),
                "customer": {"id": (i * 7919) % 100_000, "name": format!("Customer Number {i}"), "email": format!("customer{i}@example.com")},
                "amountCents": 1000 + i, "status": (["PAID", "FAILED", "PENDING", "RETRY"][(i % 4) as usize]),
                "createdAt": 1_795_168_800_000u64 + i, "note": null,
                "items": [{"sku": format!("SKU-{:05}", i % 977), "quantity": 2, "unitPrice": 12.5}, {"sku": "SKU-00042", "quantity": 1, "unitPrice": 3.25}]
            });
            avro.encode_from_json(&json.to_string()).expect("encodes")
        })
        .collect();
    let avro_decoder = sluice_codec::Decoder::typed(sluice_codec::TypeCodec::Avro(avro.into()));
    rate(
        "sluice avro (same order, mapped .avsc)",
        &avro_msgs,
        count,
        |b| avro_decoder.decode(b, true).json.map_or(0, |j| j.len()),
    );
    rate(
        "sluice schemaless protobuf (unmapped Order)",
        &msgs,
        count,
        |b| sluice_codec::sniff(b).json.map_or(0, |j| j.len()),
    );
}
