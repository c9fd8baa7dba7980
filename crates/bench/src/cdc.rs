//! A raw pgoutput reader, the baseline of the change-data benchmark (scripts/bench-cdc.sh):
//! the same replication client Sluice uses (pgwire-replication) on a slot of its own,
//! counting the change messages of COUNT changes and decoding nothing.
//!
//!   cdc-raw HOST PORT DB SLOT PUBLICATION COUNT

use pgwire_replication::{ReplicationClient, ReplicationConfig, ReplicationEvent};
use std::time::Instant;

pub fn main(args: &[String]) -> bool {
    if args.get(1).map(String::as_str) != Some("cdc-raw") {
        return false;
    }
    let port: u16 = args[3].parse().expect("PORT");
    let count: u64 = args[7].parse().expect("COUNT");
    let cfg = ReplicationConfig::new(
        args[2].clone(),
        "postgres",
        "",
        args[4].clone(),
        args[5].as_str(),
        args[6].as_str(),
    )
    .with_port(port);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (n, secs) = rt.block_on(async {
        let mut client = ReplicationClient::connect(cfg).await.expect("connect");
        let mut started = None;
        let mut n = 0u64;
        while n < count {
            match client.recv().await.expect("stream") {
                Some(ReplicationEvent::XLogData { data, .. }) => {
                    started.get_or_insert_with(Instant::now);
                    // Inserts, updates, deletes: what Sluice turns into events.
                    if matches!(data.first(), Some(b'I' | b'U' | b'D')) {
                        n += 1;
                    }
                }
                Some(ReplicationEvent::Commit { end_lsn, .. }) => {
                    client.update_applied_lsn(end_lsn)
                }
                Some(_) => {}
                None => break,
            }
        }
        let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let _ = client.shutdown().await;
        (n, secs)
    });
    println!(
        "{{\"op\":\"cdc-raw\",\"count\":{n},\"seconds\":{secs:.3},\"rate\":{:.0}}}",
        n as f64 / secs.max(1e-9)
    );
    true
}
