//! A gRPC load client for the collector (driven by scripts/bench-collect.sh; HTTP load comes
//! from wrk there): `STREAMS` concurrent `SendStream` calls of `COUNT` events in all, each
//! event a ~200-byte JSON order with an id, through the tonic client generated from the same
//! .proto. Prints one JSON line like the other baselines.
//!
//!   collect-grpc ADDR TOKEN COUNT STREAMS [unary]

use sluice_bus::collector::proto::collector_client::CollectorClient;
use sluice_bus::collector::proto::Event;
use std::time::Instant;

pub fn main(args: &[String]) -> bool {
    if args.get(1).map(String::as_str) != Some("collect-grpc") {
        return false;
    }
    let (addr, token) = (&args[2], &args[3]);
    let count: u64 = args[4].parse().expect("COUNT");
    let streams: u64 = args[5].parse().expect("STREAMS");
    let unary = args.get(6).is_some_and(|a| a == "unary");
    let bodies: Vec<Vec<u8>> = super::payloads()
        .into_iter()
        .map(|(_, j)| j.into_bytes())
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let run = format!("{:x}", std::process::id());
    let started = Instant::now();
    let accepted: u64 = rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("address")
            .connect()
            .await
            .expect("connect");
        let mut tasks = Vec::new();
        for s in 0..streams {
            let (lo, hi) = (count * s / streams, count * (s + 1) / streams);
            let channel = channel.clone();
            let bodies = bodies.clone();
            let (token, run) = (format!("Bearer {token}"), run.clone());
            tasks.push(tokio::spawn(async move {
                let mut client =
                    CollectorClient::new(channel).max_encoding_message_size(usize::MAX);
                let event = move |i: u64| Event {
                    body: bodies[i as usize % bodies.len()].clone(),
                    source: "bench".into(),
                    id: format!("{run}-{i}"),
                    ..Default::default()
                };
                let token: tonic::metadata::MetadataValue<_> = token.parse().expect("ascii");
                if unary {
                    let mut n = 0;
                    for i in lo..hi {
                        let mut r = tonic::Request::new(event(i));
                        r.metadata_mut().insert("authorization", token.clone());
                        n += client.send(r).await.expect("send").into_inner().accepted;
                    }
                    n
                } else {
                    let events = futures_util::stream::iter((lo..hi).map(event));
                    let mut r = tonic::Request::new(events);
                    r.metadata_mut().insert("authorization", token);
                    client
                        .send_stream(r)
                        .await
                        .expect("stream")
                        .into_inner()
                        .accepted
                }
            }));
        }
        let mut n = 0;
        for t in tasks {
            n += t.await.expect("task");
        }
        n
    });
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(accepted, count, "every event accepted");
    println!(
        "{{\"op\":\"collect-grpc{}\",\"count\":{count},\"seconds\":{secs:.3},\"rate\":{:.0}}}",
        if unary { "-unary" } else { "" },
        count as f64 / secs
    );
    true
}
