//! Reading a table's changes through logical replication (pgoutput): the slot and publication
//! are checked (and made, only with `--create-slot`, only Sluice's own), an optional snapshot
//! of the tables is read as of the slot's start, then the change stream. A task on the
//! reader's runtime decodes the stream and hands the capture one event per change, each
//! transaction's events once its commit arrives.
//!
//! The slot's confirmed position moves only as the capture says events are durable: each
//! transaction's end LSN is confirmed once all of its events are in the lake, so a crash (or
//! `kill -9`) resumes at the first transaction not wholly stored, and the events of it already
//! stored are skipped by their position (the change's LSN).

use super::events::{change_event, lsn_text, read_snapshot, Keys, Txn};
use super::pgoutput::{self, Relation};
use super::sql::{connect, connect_config, err, ident, qualified, sql_err, table_sql, CONNECT};
use super::Postgres;
use crate::{BusError, ReadOptions, Reader, Trouble};
use pgwire_replication::{Lsn, ReplicationClient, ReplicationEvent};
use sluice_model::Message;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// Events of one transaction handed over at once: a bulk update of millions of rows is cut
/// into pieces of this many, so memory stays bounded.
const CHUNK: usize = 5_000;
/// How often the confirmed position goes to the server: often enough that the last one is
/// sent soon after the capture ends (it waits this long, twice, before closing the stream).
const STATUS: Duration = Duration::from_millis(250);

pub(crate) enum Item {
    Events(Vec<Message>),
    /// Everything handed over before this is the WAL up to `lsn`: once it is durable, the
    /// slot may confirm `lsn`.
    Upto(Lsn),
    /// Every row of the snapshot has been handed over before this.
    SnapshotRead,
    Failed(BusError),
}

pub(crate) struct PgReader {
    runtime: Option<tokio::runtime::Runtime>,
    rx: mpsc::Receiver<Item>,
    /// Per `Upto`: how many events had been handed out before it, and its LSN.
    marks: VecDeque<(u64, Lsn)>,
    handed: u64,
    /// Events the capture has said are durable.
    durable: u64,
    /// The LSN the task reports to the server as flushed.
    confirmed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
    trouble: Arc<Mutex<Option<Trouble>>>,
    notes: Vec<String>,
    pg: PgSide,
    drop_slot: bool,
    /// With `--snapshot`: how many events had been handed out once every row of it was.
    snapshot: Option<Option<u64>>,
    ended: bool,
}

/// What is needed to drop Sluice's slot and publication at the end.
struct PgSide {
    config: super::PostgresConfig,
    slot: String,
    publication: Option<String>,
}

pub(crate) fn open(
    pg: &Postgres,
    sources: &[String],
    opts: &ReadOptions,
) -> Result<PgReader, BusError> {
    let runtime = crate::runtime("postgres")?;
    let tables: Vec<String> = sources.iter().map(|s| qualified(s)).collect();
    let own_slot = pg.slot.is_none();
    let slot = pg.slot.clone().unwrap_or_else(|| pg.own.clone());
    let own_pub = pg.publication.is_none();
    let publication = pg.publication.clone().unwrap_or_else(|| pg.own.clone());
    let mut notes = Vec::new();
    if opts.create_slot && !own_slot {
        return Err(BusError::Invalid(format!(
            "--create-slot makes only Sluice's own slot ({}); this connection reads the slot {slot:?}, which Sluice never creates or drops",
            pg.own
        )));
    }
    if opts.drop_slot && !own_slot {
        return Err(BusError::Invalid(format!(
            "--drop-slot drops only Sluice's own slot ({}), never {slot:?}",
            pg.own
        )));
    }
    let what = format!("PostgreSQL {} ({})", pg.config.place(), pg.name);
    let (client, created, keys) = runtime.block_on(async {
        let q = connect(pg).await?;
        let level: String = q
            .query_one("SHOW wal_level", &[])
            .await
            .map_err(sql_err)?
            .get(0);
        if level != "logical" {
            return Err(BusError::Invalid(format!(
                "{what} has wal_level = {level}: logical replication needs wal_level = logical (in postgresql.conf, then a restart)"
            )));
        }
        for t in &tables {
            let found = q
                .query_opt("SELECT to_regclass($1)::text", &[&table_sql(t)])
                .await
                .map_err(sql_err)?
                .and_then(|r| r.get::<_, Option<String>>(0));
            if found.is_none() {
                return Err(BusError::UnknownSource {
                    kind: "table",
                    name: t.clone(),
                    connection: pg.name.clone(),
                });
            }
        }
        // The publication: Sluice's own is made or extended; a user's is only checked.
        let published: Option<Vec<String>> = {
            let exists = q
                .query_opt("SELECT 1 FROM pg_publication WHERE pubname = $1", &[&publication])
                .await
                .map_err(sql_err)?
                .is_some();
            if exists {
                let rows = q
                    .query("SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = $1", &[&publication])
                    .await
                    .map_err(sql_err)?;
                Some(rows.iter().map(|r| r.get(0)).collect())
            } else {
                None
            }
        };
        let list = tables.iter().map(|t| table_sql(t)).collect::<Vec<_>>().join(", ");
        match (&published, own_pub) {
            (None, true) if opts.create_slot => {
                q.batch_execute(&format!(
                    // Partitioned tables' changes under their own name, not their leaves'.
                    "CREATE PUBLICATION {} FOR TABLE {list} WITH (publish_via_partition_root = true)",
                    ident(&publication)
                ))
                    .await
                    .map_err(sql_err)?;
                notes.push(format!("created publication {publication} for {}", tables.join(", ")));
            }
            (None, _) => {
                return Err(BusError::Invalid(format!(
                    "publication {publication:?} does not exist{}",
                    if own_pub { ": pass --create-slot to have Sluice create its slot and publication" } else { "" }
                )))
            }
            (Some(have), true) => {
                let missing: Vec<&String> = tables.iter().filter(|t| !have.contains(t)).collect();
                if !missing.is_empty() {
                    let add = missing.iter().map(|t| table_sql(t)).collect::<Vec<_>>().join(", ");
                    q.batch_execute(&format!("ALTER PUBLICATION {} ADD TABLE {add}", ident(&publication)))
                        .await
                        .map_err(sql_err)?;
                    notes.push(format!(
                        "added {} to publication {publication}",
                        missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            (Some(have), false) => {
                if let Some(t) = tables.iter().find(|t| !have.contains(t)) {
                    return Err(BusError::Invalid(format!(
                        "table {t} is not in publication {publication:?}, which is not Sluice's to change"
                    )));
                }
            }
        }
        // The slot.
        let row = q
            .query_opt(
                "SELECT plugin, slot_type, database, active, active_pid FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .map_err(sql_err)?;
        let created = match row {
            Some(r) => {
                let (plugin, kind, db, active): (Option<String>, String, Option<String>, bool) =
                    (r.get(0), r.get(1), r.get(2), r.get(3));
                if kind != "logical" || plugin.as_deref() != Some("pgoutput") {
                    return Err(BusError::Invalid(format!(
                        "replication slot {slot:?} is not a logical pgoutput slot ({kind}, {})",
                        plugin.unwrap_or_default()
                    )));
                }
                if db.as_deref() != Some(pg.config.database.as_str()) {
                    return Err(BusError::Invalid(format!(
                        "replication slot {slot:?} belongs to database {:?}, not {:?}",
                        db.unwrap_or_default(),
                        pg.config.database
                    )));
                }
                if active {
                    let pid: Option<i32> = r.get(4);
                    return Err(BusError::Invalid(format!(
                        "replication slot {slot:?} is in use by another reader (pid {}): one reader at a time",
                        pid.map_or("?".into(), |p| p.to_string())
                    )));
                }
                if opts.snapshot {
                    return Err(BusError::Invalid(format!(
                        "--snapshot reads the tables as of a new slot's start; slot {slot:?} exists already (drop it with --drop-slot, then capture with --create-slot --snapshot)"
                    )));
                }
                false
            }
            None if opts.create_slot => true,
            None => {
                return Err(BusError::Invalid(format!(
                    "replication slot {slot:?} does not exist{}",
                    if own_slot { ": pass --create-slot to have Sluice create it (and its publication)" } else { "" }
                )))
            }
        };
        if opts.snapshot && !created {
            return Err(BusError::Invalid("--snapshot needs --create-slot".into()));
        }
        let mut keys = Keys::new();
        for t in &tables {
            let rows = q
                .query(
                    "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                     WHERE i.indrelid = to_regclass($1) AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
                    &[&table_sql(t)],
                )
                .await
                .map_err(sql_err)?;
            keys.insert(t.clone(), rows.iter().map(|r| r.get(0)).collect());
        }
        Ok::<_, BusError>((q, created, keys))
    })?;

    let (tx, rx) = mpsc::channel::<Item>(8);
    let confirmed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let trouble = Arc::new(Mutex::new(None));
    let repl_cfg = pg
        .config
        .replication(&slot, &publication)
        .with_status_interval(STATUS);
    // Made here, so that a slot that cannot be made is an error of `reader`, not of a poll.
    let (mut repl, snapshot) = runtime.block_on(async {
        let mut repl = ReplicationClient::connect_gated(repl_cfg)
            .await
            .map_err(|e| err(&what, e))?;
        let mut snapshot = None;
        if created {
            let cmd = format!(
                "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput {}",
                ident(&slot),
                if opts.snapshot { "EXPORT_SNAPSHOT" } else { "NOEXPORT_SNAPSHOT" }
            );
            let rows = tokio::time::timeout(CONNECT, repl.simple_query(&cmd))
                .await
                .map_err(|_| err(&what, "no answer to CREATE_REPLICATION_SLOT"))?
                .map_err(|e| BusError::Client(format!("creating replication slot {slot}: {e}")))?;
            let text = |i: usize| {
                rows.first()
                    .and_then(|r| r.get(i).cloned().flatten())
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            };
            notes.push(format!(
                "created replication slot {slot} at {}: it keeps WAL until Sluice reads it; --drop-slot drops it at the end",
                text(1).unwrap_or_default()
            ));
            snapshot = text(2).filter(|s| !s.is_empty() && opts.snapshot);
        }
        Ok::<_, BusError>((repl, snapshot))
    })?;

    let task = {
        let (confirmed, stop, trouble) = (confirmed.clone(), stop.clone(), trouble.clone());
        let tables: HashSet<String> = tables.iter().cloned().collect();
        let what = what.clone();
        let connection = pg.name.clone();
        runtime.spawn(async move {
            if let Some(name) = snapshot {
                match read_snapshot(&client, &name, &tables, &keys, &connection, &tx).await {
                    Ok(true) => {
                        if tx.send(Item::SnapshotRead).await.is_err() {
                            return;
                        }
                    }
                    // Cut short: the capture has ended, and so does reading.
                    Ok(false) => return,
                    Err(e) => {
                        let _ = tx.send(Item::Failed(e)).await;
                        return;
                    }
                }
            }
            drop(client);
            if let Err(e) = repl.start().await {
                let _ = tx.send(Item::Failed(err(&what, e))).await;
                return;
            }
            if let Err(e) = repl.wait_started().await {
                let _ = tx
                    .send(Item::Failed(BusError::Client(format!(
                        "starting replication: {e}"
                    ))))
                    .await;
                return;
            }
            stream(
                &mut repl, tables, keys, &tx, &confirmed, &stop, &trouble, &what,
            )
            .await;
            let _ = repl.shutdown().await;
        })
    };
    Ok(PgReader {
        runtime: Some(runtime),
        rx,
        marks: VecDeque::new(),
        handed: 0,
        durable: 0,
        confirmed,
        stop,
        task: Some(task),
        trouble,
        notes,
        pg: PgSide {
            config: pg.config.clone(),
            slot,
            publication: own_pub.then_some(publication),
        },
        drop_slot: opts.drop_slot,
        snapshot: opts.snapshot.then_some(None),
        ended: false,
    })
}

#[allow(clippy::too_many_arguments)]
async fn stream(
    repl: &mut ReplicationClient,
    tables: HashSet<String>,
    keys: Keys,
    tx: &mpsc::Sender<Item>,
    confirmed: &AtomicU64,
    stop: &AtomicBool,
    trouble: &Mutex<Option<Trouble>>,
    what: &str,
) {
    read_changes(repl, &tables, &keys, tx, confirmed, stop, trouble, what).await;
    // However reading ended, the server hears the last durable position before the stream
    // closes: the worker sends it with its next status update (pgwire-replication sends none
    // on shutdown), which its metrics show.
    let last = Lsn::from_u64(confirmed.load(Ordering::Acquire));
    repl.update_applied_lsn(last);
    let deadline = Instant::now() + STATUS * 4;
    while repl.metrics().last_applied_lsn() < last && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_changes(
    repl: &mut ReplicationClient,
    tables: &HashSet<String>,
    keys: &Keys,
    tx: &mpsc::Sender<Item>,
    confirmed: &AtomicU64,
    stop: &AtomicBool,
    trouble: &Mutex<Option<Trouble>>,
    what: &str,
) {
    let mut rels: HashMap<u32, Relation> = HashMap::new();
    let mut txn: Option<Txn> = None;
    let mut applied = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    // A send waits while the capture is behind; it fails at once when the reader closes
    // the channel (the capture ended).
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let ev = tokio::select! {
            ev = repl.recv() => ev,
            _ = tick.tick() => {
                let c = confirmed.load(Ordering::Acquire);
                if c > applied {
                    applied = c;
                    repl.update_applied_lsn(Lsn::from_u64(c));
                }
                continue;
            }
        };
        let ev = match ev {
            Ok(Some(ev)) => ev,
            Ok(None) => return,
            Err(e) => {
                *trouble.lock().unwrap_or_else(|p| p.into_inner()) = Some(Trouble {
                    since: Instant::now(),
                    what: what.to_string(),
                    reason: e.to_string(),
                });
                let _ = tx
                    .send(Item::Failed(err(
                        what,
                        format!("the replication stream ended: {e}"),
                    )))
                    .await;
                return;
            }
        };
        let sent = match ev {
            ReplicationEvent::Begin {
                xid,
                commit_time_micros,
                ..
            } => {
                txn = Some(Txn::new(xid, commit_time_micros + PG_EPOCH_US));
                true
            }
            ReplicationEvent::XLogData {
                wal_start, data, ..
            } => match pgoutput::parse(&data) {
                Ok(pgoutput::Message::Relation(r)) => {
                    rels.insert(r.id, r);
                    true
                }
                Ok(pgoutput::Message::Change(c)) => match txn.as_mut() {
                    Some(t) => {
                        change_event(&c, &rels, tables, keys, wal_start, t);
                        if t.events.len() >= CHUNK {
                            let part = std::mem::take(&mut t.events);
                            tx.send(Item::Events(part)).await.is_ok()
                        } else {
                            true
                        }
                    }
                    None => true,
                },
                Ok(pgoutput::Message::Other) => true,
                Err(e) => {
                    let _ = tx
                        .send(Item::Failed(BusError::Client(format!(
                            "{what}: {e} at {}",
                            lsn_text(wal_start)
                        ))))
                        .await;
                    return;
                }
            },
            ReplicationEvent::Commit { end_lsn, .. } => {
                let events = txn.take().map(|t| t.events).unwrap_or_default();
                (events.is_empty() || tx.send(Item::Events(events)).await.is_ok())
                    && tx.send(Item::Upto(end_lsn)).await.is_ok()
            }
            // Between transactions the server's position is all read: confirming it (once
            // what came before is durable) lets an idle slot release WAL.
            ReplicationEvent::KeepAlive { wal_end, .. } if txn.is_none() => {
                tx.send(Item::Upto(wal_end)).await.is_ok()
            }
            _ => true,
        };
        if !sent {
            return;
        }
    }
}

impl PgReader {
    fn confirm(&mut self, durable: u64) {
        self.durable = self.durable.max(durable);
        let durable = self.durable;
        let mut upto = None;
        while self.marks.front().is_some_and(|&(n, _)| n <= durable) {
            upto = self.marks.pop_front().map(|(_, l)| l);
        }
        if let Some(l) = upto {
            self.confirmed.fetch_max(l.as_u64(), Ordering::AcqRel);
        }
    }
}

impl Reader for PgReader {
    fn poll(&mut self, max: usize, timeout: Duration) -> Result<Vec<Message>, BusError> {
        let Some(rt) = &self.runtime else {
            return Ok(Vec::new());
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut out: Vec<Message> = Vec::new();
        let rx = &mut self.rx;
        let mut failed = None;
        rt.block_on(async {
            loop {
                let item = if out.is_empty() {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(i) => i,
                        Err(_) => return,
                    }
                } else {
                    match rx.try_recv() {
                        Ok(i) => Some(i),
                        Err(_) => return,
                    }
                };
                match item {
                    Some(Item::Events(e)) => {
                        self.handed += e.len() as u64;
                        out.extend(e);
                        if out.len() >= max {
                            return;
                        }
                    }
                    // Marks with no event between them are one: keepalives on an idle
                    // table would otherwise pile up.
                    Some(Item::Upto(l)) => match self.marks.back_mut() {
                        Some(last) if last.0 == self.handed => last.1 = l,
                        _ => self.marks.push_back((self.handed, l)),
                    },
                    Some(Item::SnapshotRead) => {
                        if let Some(s) = self.snapshot.as_mut() {
                            *s = Some(self.handed);
                        }
                    }
                    Some(Item::Failed(e)) => {
                        failed = Some(e);
                        return;
                    }
                    None => return,
                }
            }
        });
        // Marks after the last durable event (a quiet table's keepalives) are confirmed
        // now: the capture acknowledges only when its durable count grows.
        self.confirm(self.durable);
        match failed {
            // What came before the failure is still handed over; the error comes next time.
            Some(e) if out.is_empty() => Err(e),
            Some(e) => {
                self.pending_error(e);
                Ok(out)
            }
            None => Ok(out),
        }
    }

    fn at_end(&self) -> bool {
        false
    }

    fn acknowledge(&mut self, durable: u64) -> Result<(), BusError> {
        self.confirm(durable);
        Ok(())
    }

    /// Everything read is durable: confirm it, let the task report it, and drop Sluice's own
    /// slot and publication when asked.
    fn commit(&mut self, handled: u64) -> Result<(), BusError> {
        self.confirm(handled);
        self.finish();
        // Whole only when every row was read and every one of them is in the lake.
        if self
            .snapshot
            .is_some_and(|rows| rows.is_none_or(|n| self.durable < n))
        {
            self.notes.push(
                "the snapshot ended before every row was read, and a snapshot is not resumed: the next capture reads only changes; for all rows, drop the slot (--drop-slot) and capture again with --create-slot --snapshot".to_string(),
            );
        }
        if self.drop_slot {
            self.drop_own()?;
        } else if self.pg.publication.is_some() || self.pg.slot.starts_with("sluice_") {
            self.notes.push(format!(
                "replication slot {} stays: the server keeps WAL from its position until the next capture reads it (pass --drop-slot to drop it at the end)",
                self.pg.slot
            ));
        }
        Ok(())
    }

    fn trouble(&self) -> Option<Trouble> {
        self.trouble
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn notes(&self) -> Vec<String> {
        self.notes.clone()
    }
}

impl PgReader {
    fn pending_error(&mut self, e: BusError) {
        // Handed back on the next poll through a one-item channel of our own.
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(Item::Failed(e));
        self.rx = rx;
    }

    /// Reports the confirmed position (the task hands it on within 100 ms, the worker sends it
    /// within its status interval) and ends the stream.
    fn finish(&mut self) {
        if self.ended {
            return;
        }
        self.ended = true;
        if let (Some(rt), Some(task)) = (&self.runtime, self.task.take()) {
            // The task stops reading (a send waiting on a full channel fails once it is
            // closed), reports the confirmed position and waits until it has gone out.
            self.stop.store(true, Ordering::Relaxed);
            self.rx.close();
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
            });
        }
    }

    fn drop_own(&mut self) -> Result<(), BusError> {
        let Some(rt) = &self.runtime else {
            return Ok(());
        };
        let cfg = self.pg.config.clone();
        let (slot, publication) = (self.pg.slot.clone(), self.pg.publication.clone());
        let note = rt.block_on(async {
            let q = connect_config(&cfg, &cfg.place()).await?;
            // The walsender lets the slot go a moment after the stream closes.
            let mut last = None;
            for _ in 0..50 {
                match q
                    .execute("SELECT pg_drop_replication_slot($1)", &[&slot])
                    .await
                {
                    Ok(_) => {
                        last = None;
                        break;
                    }
                    Err(e) => {
                        last = Some(sql_err(e));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
            if let Some(e) = last {
                return Err(e);
            }
            if let Some(p) = &publication {
                q.batch_execute(&format!("DROP PUBLICATION IF EXISTS {}", ident(p)))
                    .await
                    .map_err(sql_err)?;
            }
            Ok::<_, BusError>(format!(
                "dropped replication slot {slot}{}",
                publication
                    .map(|p| format!(" and publication {p}"))
                    .unwrap_or_default()
            ))
        })?;
        self.notes.push(note);
        Ok(())
    }
}

impl Drop for PgReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx.close();
        if let Some(rt) = self.runtime.take() {
            if let Some(task) = self.task.take() {
                rt.block_on(async {
                    let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
                });
            }
            rt.shutdown_timeout(Duration::from_millis(200));
        }
    }
}
