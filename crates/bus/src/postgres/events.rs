//! Changes and snapshot rows as events: one per change, its payload the JSON a search reads
//! (`op`, `schema`, `table`, `new`, `old` or `old_key`, `xid`, `lsn`, `commit_time`), its key
//! the row's key columns, its position the change's LSN.

use super::pgoutput::{Change, Relation, Value};
use super::sql::{sql_err, table_sql};
use super::types;
use crate::BusError;
use pgwire_replication::Lsn;
use serde_json::{json, Map, Value as Json};
use sluice_model::Message;
use std::collections::{HashMap, HashSet};
use tokio::sync::mpsc;

/// Rows fetched per round trip while reading the snapshot.
const FETCH: usize = 5_000;

/// The tables as of the slot's start, one `snapshot` event per row; false when the capture
/// ended before every row was read.
pub(crate) async fn read_snapshot(
    q: &tokio_postgres::Client,
    name: &str,
    tables: &HashSet<String>,
    all_keys: &Keys,
    connection: &str,
    tx: &mpsc::Sender<super::source::Item>,
) -> Result<bool, BusError> {
    q.batch_execute(&format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
        name.replace('\'', "")
    ))
    .await
    .map_err(sql_err)?;
    let mut sorted: Vec<&String> = tables.iter().collect();
    sorted.sort();
    let now = sluice_model::now_us();
    for t in sorted {
        let cols = q
            .query(
                "SELECT attname::text, atttypid::oid FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                &[&table_sql(t)],
            )
            .await
            .map_err(sql_err)?;
        let cols: Vec<(String, u32)> = cols.iter().map(|r| (r.get(0), r.get(1))).collect();
        let keys: &[String] = all_keys.get(t.as_str()).map_or(&[], |k| k.as_slice());
        let (schema, table) = t.split_once('.').unwrap_or(("public", t));
        q.batch_execute(&format!(
            "DECLARE sluice_snapshot NO SCROLL CURSOR FOR SELECT * FROM {}",
            table_sql(t)
        ))
        .await
        .map_err(sql_err)?;
        let mut n = 0u64;
        loop {
            let rows = q
                .simple_query(&format!("FETCH {FETCH} FROM sluice_snapshot"))
                .await
                .map_err(sql_err)?;
            let mut batch = Vec::new();
            for m in rows {
                let tokio_postgres::SimpleQueryMessage::Row(r) = m else {
                    continue;
                };
                let mut row = Map::new();
                for (i, (col, oid)) in cols.iter().enumerate() {
                    let v = match r.get(i) {
                        None => Json::Null,
                        Some(s) => types::to_json(*oid, s.as_bytes()),
                    };
                    row.insert(col.clone(), v);
                }
                n += 1;
                let key: Map<String, Json> = keys
                    .iter()
                    .filter_map(|k| Some((k.clone(), row.get(k)?.clone())))
                    .collect();
                let key = (!key.is_empty()).then(|| Json::Object(key).to_string().into_bytes());
                let payload =
                    json!({"op": "snapshot", "schema": schema, "table": table, "new": row});
                batch.push(Message {
                    // A snapshot row has no WAL position: its id names the snapshot and row.
                    id: Some(format!("postgres:{connection}/{t}/snapshot/{name}/{n}")),
                    source: t.clone(),
                    partition: None,
                    offset: None,
                    sub_offset: None,
                    key,
                    headers: Vec::new(),
                    timestamp_us: Some(now),
                    payload: payload.to_string().into_bytes(),
                    properties: None,
                });
            }
            if batch.is_empty() {
                break;
            }
            if tx.send(super::source::Item::Events(batch)).await.is_err() {
                // The capture ended before every row was read.
                return Ok(false);
            }
        }
        q.batch_execute("CLOSE sluice_snapshot")
            .await
            .map_err(sql_err)?;
    }
    q.batch_execute("COMMIT").await.map_err(sql_err)?;
    Ok(true)
}

/// One column list as a JSON object; unchanged TOASTed columns are left out and named.
fn row(rel: &Relation, values: &[Value], unchanged: &mut Vec<String>) -> Json {
    let mut m = Map::new();
    for (c, v) in rel.columns.iter().zip(values) {
        match v {
            Value::Null => {
                m.insert(c.name.clone(), Json::Null);
            }
            Value::Unchanged => unchanged.push(c.name.clone()),
            Value::Text(t) => {
                m.insert(c.name.clone(), types::to_json(c.type_oid, t));
            }
        }
    }
    Json::Object(m)
}

/// The primary key's columns of each captured table (`schema.table`), read from the catalog
/// when reading begins: the event key of its changes and of its snapshot rows alike.
pub(crate) type Keys = HashMap<String, Vec<String>>;

/// The row's key as the event's key (`{"id":7}`), so a replay to Kafka keeps one row's
/// changes on one partition: the primary key's columns, else the replica identity's (unless
/// that is the whole row, REPLICA IDENTITY FULL, which changes with every update).
fn key_of(rel: &Relation, values: &[Value], pk: Option<&Vec<String>>) -> Option<Vec<u8>> {
    let flagged = rel.columns.iter().filter(|c| c.key).count();
    let is_key = |name: &str, flag: bool| match pk.filter(|p| !p.is_empty()) {
        Some(p) => p.iter().any(|k| k == name),
        None => flag && flagged < rel.columns.len(),
    };
    let mut m = Map::new();
    for (c, v) in rel.columns.iter().zip(values) {
        if is_key(&c.name, c.key) {
            let j = match v {
                Value::Text(t) => types::to_json(c.type_oid, t),
                _ => Json::Null,
            };
            m.insert(c.name.clone(), j);
        }
    }
    (!m.is_empty()).then(|| Json::Object(m).to_string().into_bytes())
}

/// An old tuple: the whole old row with REPLICA IDENTITY FULL (`old`), else only its key
/// columns (`old_key`; pgoutput sends the others as nulls).
fn old_row(rel: &Relation, values: &[Value], full: bool) -> (&'static str, Json) {
    let mut ignored = Vec::new();
    if full {
        return ("old", row(rel, values, &mut ignored));
    }
    let mut m = Map::new();
    for (c, v) in rel.columns.iter().zip(values) {
        if c.key {
            if let Value::Text(t) = v {
                m.insert(c.name.clone(), types::to_json(c.type_oid, t));
            } else {
                m.insert(c.name.clone(), Json::Null);
            }
        }
    }
    ("old_key", Json::Object(m))
}

pub(crate) struct Txn {
    pub xid: u32,
    pub commit_us: i64,
    pub events: Vec<Message>,
    /// The LSN and table of the last change and how many changes of that table came at it:
    /// a multi-row insert (COPY) logs its rows at one LSN, so the position is the LSN and
    /// this ordinal. Per table, so that it does not depend on which tables are captured (a
    /// TRUNCATE of several tables is one LSN).
    pub at: (u64, u32, i64),
}

impl Txn {
    pub(crate) fn new(xid: u32, commit_us: i64) -> Self {
        Txn {
            xid,
            commit_us,
            events: Vec::new(),
            at: (0, 0, -1),
        }
    }

    fn ordinal(&mut self, lsn: Lsn, relation: u32) -> i64 {
        self.at = if (self.at.0, self.at.1) == (lsn.as_u64(), relation) {
            (self.at.0, relation, self.at.2 + 1)
        } else {
            (lsn.as_u64(), relation, 0)
        };
        self.at.2
    }
}

pub(crate) fn lsn_text(l: Lsn) -> String {
    l.to_pg_string()
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn change_event(
    change: &Change,
    rels: &HashMap<u32, Relation>,
    tables: &HashSet<String>,
    keys: &Keys,
    lsn: Lsn,
    txn: &mut Txn,
) {
    let (op, ids): (&str, Vec<u32>) = match change {
        Change::Insert { relation, .. } => ("insert", vec![*relation]),
        Change::Update { relation, .. } => ("update", vec![*relation]),
        Change::Delete { relation, .. } => ("delete", vec![*relation]),
        Change::Truncate { relations, .. } => ("truncate", relations.clone()),
    };
    for id in ids {
        let Some(rel) = rels.get(&id) else { continue };
        let source = format!("{}.{}", rel.schema, rel.name);
        if !tables.is_empty() && !tables.contains(&source) {
            continue;
        }
        let mut unchanged = Vec::new();
        let mut p = Map::new();
        p.insert("op".into(), op.into());
        p.insert("schema".into(), rel.schema.clone().into());
        p.insert("table".into(), rel.name.clone().into());
        let pk = keys.get(&source);
        let mut key = None;
        match change {
            Change::Insert { new, .. } => {
                p.insert("new".into(), row(rel, new, &mut unchanged));
                key = key_of(rel, new, pk);
            }
            Change::Update { old, new, .. } => {
                p.insert("new".into(), row(rel, new, &mut unchanged));
                if let Some((old, full)) = old {
                    let (name, old) = old_row(rel, old, *full);
                    p.insert(name.into(), old);
                }
                key = key_of(rel, new, pk);
            }
            Change::Delete {
                old: (old, full), ..
            } => {
                let (name, before) = old_row(rel, old, *full);
                p.insert(name.into(), before);
                key = key_of(rel, old, pk);
            }
            Change::Truncate {
                cascade,
                restart_identity,
                ..
            } => {
                p.insert("cascade".into(), (*cascade).into());
                p.insert("restart_identity".into(), (*restart_identity).into());
            }
        }
        if !unchanged.is_empty() {
            p.insert("unchanged".into(), unchanged.into());
        }
        p.insert("xid".into(), txn.xid.into());
        p.insert("lsn".into(), lsn_text(lsn).into());
        if let Some(t) = chrono::DateTime::from_timestamp_micros(txn.commit_us) {
            p.insert(
                "commit_time".into(),
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                    .into(),
            );
        }
        let ordinal = txn.ordinal(lsn, id);
        txn.events.push(Message {
            id: None,
            source,
            // No partition: the lake knows these by the id the position derives
            // (`postgres:CONN/TABLE//LSN-ORDINAL`), so re-reading a transaction skips exactly
            // the changes already stored, also within one multi-row insert.
            partition: None,
            offset: Some(lsn.as_u64() as i64),
            sub_offset: Some(ordinal),
            key,
            headers: Vec::new(),
            timestamp_us: Some(txn.commit_us),
            payload: Json::Object(p).to_string().into_bytes(),
            properties: None,
        });
    }
}
