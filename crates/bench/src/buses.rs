//! Raw baselines for NATS JetStream, MQTT and Redis Streams (driven by scripts/bench-buses.sh),
//! written with the client crates Sluice itself uses, so capture and replay are measured as
//! ratios against the same library on the same server in the same run. Each prints one JSON
//! line like `produce`/`consume` in main.rs.
//!
//!   nats-stream URL STREAM SUBJECT        creates a stream on SUBJECT (file storage)
//!   nats-delete URL STREAM                deletes it
//!   nats-publish URL SUBJECT COUNT        JetStream publish, acks pipelined (sliding window)
//!   nats-read URL STREAM COUNT            ordered consumer from the first message
//!   redis-xadd URL STREAM COUNT           pipelined XADD of a `payload` field
//!   redis-xread URL STREAM COUNT          XREAD COUNT 10000 loop from 0
//!   mqtt-publish URL TOPIC COUNT QOS [RATE]  MQTT 5 publish (paced to RATE/s); QoS 1 ends
//!                                         at the last PUBACK
//!   mqtt-subscribe URL FILTER COUNT QOS   MQTT 5 subscriber; stops at COUNT or 3 s of silence
//!
//! With `SLUICE_BENCH_HEADERS=1` the publishers (nats-publish, redis-xadd, mqtt-publish) send
//! each message with the provenance Sluice's replay adds, at the same sizes: `sluice-replay-id`
//! and `sluice-source` headers (Redis: fields; MQTT 5: user properties), and for NATS
//! `Nats-Msg-Id` set to the replay id, so the server's duplicate check runs as for Sluice. A
//! replay is then compared with a raw client sending the same messages, not smaller ones.

use futures_util::StreamExt;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Acks awaited at once by the raw JetStream publisher (Sluice's sink keeps 1,000 in flight).
const NATS_WINDOW: usize = 1_000;
/// XADDs per pipeline in the raw Redis publisher (as Sluice's sink).
const REDIS_BATCH: usize = 1_000;
/// How long a raw subscriber waits for one more message before it reports what it got: at
/// QoS 0 a broker under load may drop, and the count then says how many arrived.
const SILENCE: Duration = Duration::from_secs(3);

/// The headers Sluice's replay would add to message `i` (see the module comment), when asked.
fn provenance(i: u64) -> Option<[(&'static str, String); 2]> {
    std::env::var("SLUICE_BENCH_HEADERS")
        .ok()
        .filter(|v| v == "1")?;
    // LAKE_ID:RUN_ID:EVENT_ID and CONNECTION/SOURCE/PARTITION/OFFSET, as replay writes them.
    let source = format!("nb/b1764670000_in/0/{}", i + 1);
    Some([
        (
            "sluice-replay-id",
            format!(
                "0b6f1c1e-6a43-4f5e-9d2a-1c7f3e2b9a10:5d1e0c9b7a6f4e3d2c1b0a9f8e7d6c5b:nats:{source}"
            ),
        ),
        ("sluice-source", source),
    ])
}

fn report(op: &str, count: u64, secs: f64) {
    println!(
        "{{\"op\":\"{op}\",\"count\":{count},\"seconds\":{secs:.3},\"rate\":{:.0}}}",
        count as f64 / secs
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

fn bodies() -> Vec<Vec<u8>> {
    super::payloads().into_iter().map(|(b, _)| b).collect()
}

pub fn main(args: &[String]) -> bool {
    let n = |i: usize| -> u64 { args[i].parse().expect("COUNT") };
    match args.get(1).map(String::as_str) {
        Some("nats-stream") => nats_stream(&args[2], &args[3], &args[4]),
        Some("nats-delete") => nats_delete(&args[2], &args[3]),
        Some("nats-publish") => nats_publish(&args[2], &args[3], n(4)),
        Some("nats-read") => nats_read(&args[2], &args[3], n(4)),
        Some("redis-xadd") => redis_xadd(&args[2], &args[3], n(4)),
        Some("redis-xread") => redis_xread(&args[2], &args[3], n(4)),
        Some("mqtt-publish") => mqtt_publish(
            &args[2],
            &args[3],
            n(4),
            args[5].parse().unwrap(),
            args.get(6).map_or(0, |r| r.parse().expect("RATE")),
        ),
        Some("mqtt-subscribe") => {
            mqtt_subscribe(&args[2], &args[3], n(4), args[5].parse().unwrap())
        }
        _ => return false,
    }
    true
}

fn nats_stream(url: &str, stream: &str, subject: &str) {
    runtime().block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.expect("connect"));
        js.create_stream(async_nats::jetstream::stream::Config {
            name: stream.into(),
            subjects: vec![subject.into()],
            ..Default::default()
        })
        .await
        .expect("create stream");
    });
}

fn nats_delete(url: &str, stream: &str) {
    runtime().block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.expect("connect"));
        js.delete_stream(stream).await.expect("delete stream");
    });
}

fn nats_publish(url: &str, subject: &str, count: u64) {
    let msgs = bodies();
    runtime().block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.expect("connect"));
        let subject = async_nats::Subject::from(subject);
        let mut acks = VecDeque::with_capacity(NATS_WINDOW);
        let start = Instant::now();
        for i in 0..count {
            let body = msgs[(i % 1000) as usize].clone();
            let ack = match provenance(i) {
                None => js.publish(subject.clone(), body.into()).await,
                Some(h) => {
                    let mut headers = async_nats::HeaderMap::new();
                    headers.insert("Nats-Msg-Id", h[0].1.as_str());
                    for (k, v) in &h {
                        headers.insert(*k, v.as_str());
                    }
                    js.publish_with_headers(subject.clone(), headers, body.into())
                        .await
                }
            }
            .expect("publish");
            acks.push_back(ack);
            if acks.len() >= NATS_WINDOW {
                acks.pop_front().unwrap().await.expect("ack");
            }
        }
        for ack in acks {
            ack.await.expect("ack");
        }
        report("raw-nats-publish", count, start.elapsed().as_secs_f64());
    });
}

fn nats_read(url: &str, stream: &str, count: u64) {
    use async_nats::jetstream::consumer::{pull::OrderedConfig, DeliverPolicy};
    runtime().block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(url).await.expect("connect"));
        let start = Instant::now();
        let s = js.get_stream(stream).await.expect("stream");
        let consumer = s
            .create_consumer(OrderedConfig {
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut messages = consumer.messages().await.expect("messages");
        let (mut n, mut bytes) = (0u64, 0usize);
        while n < count {
            match tokio::time::timeout(SILENCE, messages.next()).await {
                Ok(Some(Ok(m))) => {
                    n += 1;
                    bytes += m.payload.len();
                }
                Ok(Some(Err(e))) => eprintln!("ordered consumer: {e}"),
                _ => break,
            }
        }
        let _ = bytes;
        report("raw-nats-read", n, start.elapsed().as_secs_f64());
    });
}

fn redis_xadd(url: &str, stream: &str, count: u64) {
    let msgs = bodies();
    let mut con = redis::Client::open(url)
        .expect("url")
        .get_connection()
        .expect("connect");
    let start = Instant::now();
    let mut i = 0u64;
    while i < count {
        let mut pipe = redis::pipe();
        let end = (i + REDIS_BATCH as u64).min(count);
        for j in i..end {
            let cmd = pipe
                .cmd("XADD")
                .arg(stream)
                .arg("*")
                .arg("payload")
                .arg(&msgs[(j % 1000) as usize]);
            for (k, v) in provenance(j).into_iter().flatten() {
                cmd.arg(k).arg(v);
            }
        }
        let ids: Vec<String> = pipe.query(&mut con).expect("XADD");
        assert_eq!(ids.len() as u64, end - i);
        i = end;
    }
    report("raw-redis-xadd", count, start.elapsed().as_secs_f64());
}

fn redis_xread(url: &str, stream: &str, count: u64) {
    use redis::streams::{StreamReadOptions, StreamReadReply};
    use redis::TypedCommands;
    let mut con = redis::Client::open(url)
        .expect("url")
        .get_connection()
        .expect("connect");
    let start = Instant::now();
    let (mut n, mut last) = (0u64, "0".to_string());
    while n < count {
        let reply: Option<StreamReadReply> = con
            .xread_options(
                &[stream],
                &[&last],
                &StreamReadOptions::default().count(10_000),
            )
            .expect("XREAD");
        let Some(reply) = reply else { break };
        let Some(key) = reply.keys.into_iter().next() else {
            break;
        };
        if key.ids.is_empty() {
            break;
        }
        n += key.ids.len() as u64;
        last = key.ids.last().map(|e| e.id.clone()).unwrap_or(last);
    }
    report("raw-redis-xread", n, start.elapsed().as_secs_f64());
}

fn mqtt_options(url: &str, role: &str) -> rumqttc::v5::MqttOptions {
    let hostport = url
        .split_once("://")
        .map_or(url, |(_, r)| r)
        .trim_end_matches('/');
    let (host, port) = hostport.rsplit_once(':').expect("mqtt://HOST:PORT");
    let id = format!("bench-{role}-{}", std::process::id());
    let mut o = rumqttc::v5::MqttOptions::new(id, host, port.parse().expect("port"));
    o.set_keep_alive(Duration::from_secs(30))
        .set_clean_start(true)
        .set_session_expiry_interval(Some(0));
    o
}

fn qos(q: u8) -> rumqttc::v5::mqttbytes::QoS {
    use rumqttc::v5::mqttbytes::QoS;
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// `rate` > 0 paces publishing to that many messages/s: mosquitto drops what a subscriber
/// cannot take (QoS 1 too, past its queue of 1,000), so an unpaced run measures the drops.
fn mqtt_publish(url: &str, topic: &str, count: u64, q: u8, rate: u64) {
    use rumqttc::v5::{mqttbytes::v5::Packet, Event};
    let msgs = bodies();
    runtime().block_on(async {
        let (client, mut el) = rumqttc::v5::AsyncClient::new(mqtt_options(url, "pub"), 100);
        // The event loop does the writing and counts what is done: written (QoS 0) or
        // acknowledged (QoS 1 and 2).
        let driver = tokio::spawn(async move {
            let mut done = 0u64;
            while done < count {
                match el.poll().await {
                    Ok(Event::Outgoing(rumqttc::Outgoing::Publish(_))) if q == 0 => done += 1,
                    Ok(Event::Incoming(Packet::PubAck(_))) if q == 1 => done += 1,
                    Ok(Event::Incoming(Packet::PubComp(_))) if q == 2 => done += 1,
                    Ok(_) => {}
                    Err(e) => panic!("mqtt: {e}"),
                }
            }
            el
        });
        let start = Instant::now();
        for i in 0..count {
            if rate > 0 && i % 100 == 0 {
                let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
            }
            let body = msgs[(i % 1000) as usize].clone();
            match provenance(i) {
                None => client.publish(topic, qos(q), false, body).await,
                Some(h) => {
                    let props = rumqttc::v5::mqttbytes::v5::PublishProperties {
                        user_properties: h.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                        ..Default::default()
                    };
                    client
                        .publish_with_properties(topic, qos(q), false, body, props)
                        .await
                }
            }
            .expect("publish");
        }
        // Disconnecting before the last acknowledgement would cut the acks off.
        let mut el = driver.await.expect("event loop");
        let secs = start.elapsed().as_secs_f64();
        let _ = client.disconnect().await;
        let _ = tokio::time::timeout(Duration::from_secs(2), el.poll()).await;
        report(&format!("raw-mqtt-publish-qos{q}"), count, secs);
    });
}

fn mqtt_subscribe(url: &str, filter: &str, count: u64, q: u8) {
    use rumqttc::v5::{mqttbytes::v5::Packet, Event};
    runtime().block_on(async {
        let (client, mut el) = rumqttc::v5::AsyncClient::new(mqtt_options(url, "sub"), 100);
        client.subscribe(filter, qos(q)).await.expect("subscribe");
        let mut n = 0u64;
        let mut first: Option<Instant> = None;
        let mut last = Instant::now();
        let began = Instant::now();
        while n < count {
            match tokio::time::timeout(SILENCE, el.poll()).await {
                Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => eprintln!("subscribed"),
                Ok(Ok(Event::Incoming(Packet::Publish(_)))) => {
                    n += 1;
                    last = Instant::now();
                    first.get_or_insert(last);
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => panic!("mqtt: {e}"),
                // Nothing at all for two minutes: the publisher never ran.
                Err(_) if first.is_some() || began.elapsed() > Duration::from_secs(120) => break,
                Err(_) => {}
            }
        }
        let secs = first.map_or(0.0, |f| (last - f).as_secs_f64());
        report(&format!("raw-mqtt-subscribe-qos{q}"), n, secs);
    });
}
