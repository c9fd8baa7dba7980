//! Health and listing: the server's version and `wal_level`, the tables with their row
//! estimates, and the publications and replication slots, each slot with the WAL it holds
//! back (bytes from its restart position, from which the server keeps WAL, to the current WAL
//! end) and a warning when it is
//! inactive, since an inactive slot keeps WAL until someone reads it.

use super::sql::{connect, sql_err};
use super::Postgres;
use crate::{BusError, Health, SourceInfo};
use std::time::{Duration, Instant};

pub(crate) fn check(pg: &Postgres, timeout: Duration) -> Result<Health, BusError> {
    let rt = crate::runtime("postgres")?;
    let started = Instant::now();
    rt.block_on(async {
        let q = tokio::time::timeout(timeout, connect(pg))
            .await
            .map_err(|_| BusError::Unreachable {
                what: format!("PostgreSQL {} ({})", pg.config.place(), pg.name),
                reason: format!("no answer within {} s", timeout.as_secs()),
            })??;
        let row = q
            .query_one(
                "SELECT current_setting('server_version'), current_setting('wal_level'), (SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema'))",
                &[],
            )
            .await
            .map_err(sql_err)?;
        let (version, level, tables): (String, String, i64) = (row.get(0), row.get(1), row.get(2));
        Ok(Health {
            brokers: vec![format!(
                "PostgreSQL {version} at {}, wal_level {level}{}",
                pg.config.place(),
                if level == "logical" { "" } else { " (logical replication needs wal_level = logical)" }
            )],
            sources: tables as usize,
            latency_ms: started.elapsed().as_millis() as u64,
            registry: None,
        })
    })
}

pub(crate) fn sources(pg: &Postgres, only: Option<&str>) -> Result<Vec<SourceInfo>, BusError> {
    let rt = crate::runtime("postgres")?;
    rt.block_on(async {
        let q = connect(pg).await?;
        let mut out = Vec::new();
        let tables = q
            .query(
                "SELECT n.nspname || '.' || c.relname, GREATEST(c.reltuples, 0)::bigint, pg_total_relation_size(c.oid)
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
                 ORDER BY 1",
                &[],
            )
            .await
            .map_err(sql_err)?;
        for r in tables {
            let name: String = r.get(0);
            if only.is_some_and(|o| super::sql::qualified(o) != name) {
                continue;
            }
            out.push(SourceInfo {
                name,
                kind: Some("table".into()),
                ready: Some(r.get::<_, i64>(1)),
                bytes: Some(r.get::<_, i64>(2)),
                ..SourceInfo::default()
            });
        }
        if only.is_some() {
            return Ok(out);
        }
        let pubs = q
            .query(
                "SELECT p.pubname, coalesce(string_agg(t.schemaname || '.' || t.tablename, ',' ORDER BY 1), '') FROM pg_publication p LEFT JOIN pg_publication_tables t ON t.pubname = p.pubname GROUP BY p.pubname ORDER BY 1",
                &[],
            )
            .await
            .map_err(sql_err)?;
        for r in pubs {
            let tables: String = r.get(1);
            out.push(SourceInfo {
                name: r.get(0),
                internal: true,
                kind: Some("publication".into()),
                subjects: tables.split(',').filter(|t| !t.is_empty()).map(str::to_string).collect(),
                ..SourceInfo::default()
            });
        }
        let slots = q
            .query(
                "SELECT slot_name::text, coalesce(plugin::text, ''), active,
                        coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint,
                        coalesce(confirmed_flush_lsn::text, restart_lsn::text, '')
                 FROM pg_replication_slots WHERE database = current_database() ORDER BY 1",
                &[],
            )
            .await
            .map_err(sql_err)?;
        for r in slots {
            let (name, plugin, active, lag, at): (String, String, bool, i64, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            out.push(SourceInfo {
                warning: (!active && lag > 0).then(|| {
                    format!("inactive, holding back {lag} bytes of WAL: the server keeps it until the slot is read or dropped")
                }),
                name,
                internal: true,
                kind: Some(format!("replication slot ({plugin}{})", if active { ", active" } else { ", inactive" })),
                bytes: Some(lag),
                last: Some(at),
                ..SourceInfo::default()
            });
        }
        Ok(out)
    })
}
