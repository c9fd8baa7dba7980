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

/// The tables as of the slot's start, one `snapshot` event per row.
pub(crate) async fn read_snapshot(
    q: &tokio_postgres::Client,
    name: &str,
    tables: &HashSet<String>,
    connection: &str,
    tx: &mpsc::Sender<super::source::Item>,
) -> Result<(), BusError> {
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
        // The primary key's columns, as changes carry them (the replica identity's default).
        let keys: Vec<String> = q
            .query(
                "SELECT a.attname::text FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass($1) AND i.indisprimary",
                &[&table_sql(t)],
            )
            .await
            .map_err(sql_err)?
            .iter()
            .map(|r| r.get(0))
            .collect();
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
                return Ok(());
            }
        }
        q.batch_execute("CLOSE sluice_snapshot")
            .await
            .map_err(sql_err)?;
    }
    q.batch_execute("COMMIT").await.map_err(sql_err)?;
    Ok(())
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

/// The key columns of a row, as the event's key (`{"id":7}`), so a replay to Kafka keeps
/// one row's changes on one partition.
fn key_of(rel: &Relation, values: &[Value]) -> Option<Vec<u8>> {
    let mut m = Map::new();
    for (c, v) in rel.columns.iter().zip(values) {
        if c.key {
            let j = match v {
                Value::Text(t) => types::to_json(c.type_oid, t),
                _ => Json::Null,
            };
            m.insert(c.name.clone(), j);
        }
    }
    (!m.is_empty()).then(|| Json::Object(m).to_string().into_bytes())
}

pub(crate) struct Txn {
    pub xid: u32,
    pub commit_us: i64,
    pub events: Vec<Message>,
}

pub(crate) fn lsn_text(l: Lsn) -> String {
    l.to_pg_string()
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn change_event(
    change: &Change,
    rels: &HashMap<u32, Relation>,
    tables: &HashSet<String>,
    lsn: Lsn,
    txn: &Txn,
    out: &mut Vec<Message>,
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
        let mut key = None;
        match change {
            Change::Insert { new, .. } => {
                p.insert("new".into(), row(rel, new, &mut unchanged));
                key = key_of(rel, new);
            }
            Change::Update { old, new, .. } => {
                p.insert("new".into(), row(rel, new, &mut unchanged));
                if let Some((old, full)) = old {
                    let mut ignored = Vec::new();
                    p.insert(
                        if *full { "old" } else { "old_key" }.into(),
                        row(rel, old, &mut ignored),
                    );
                }
                key = key_of(rel, new);
            }
            Change::Delete {
                old: (old, full), ..
            } => {
                let mut ignored = Vec::new();
                p.insert(
                    if *full { "old" } else { "old_key" }.into(),
                    row(rel, old, &mut ignored),
                );
                key = key_of(rel, old);
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
        out.push(Message {
            id: None,
            source,
            partition: Some(0),
            offset: Some(lsn.as_u64() as i64),
            sub_offset: None,
            key,
            headers: Vec::new(),
            timestamp_us: Some(txn.commit_us),
            payload: Json::Object(p).to_string().into_bytes(),
            properties: None,
        });
    }
}
