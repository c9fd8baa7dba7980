//! What both the reader and the listing use to talk to PostgreSQL: connecting (bounded in
//! time), quoting names Sluice writes into SQL, and errors in the server's own words.

use super::Postgres;
use crate::BusError;
use std::time::Duration;

pub(crate) const CONNECT: Duration = Duration::from_secs(10);

pub(crate) fn qualified(t: &str) -> String {
    if t.contains('.') {
        t.to_string()
    } else {
        format!("public.{t}")
    }
}

/// An identifier quoted for SQL (doubled quotes inside).
pub(crate) fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(crate) fn table_sql(t: &str) -> String {
    let (schema, name) = t.split_once('.').unwrap_or(("public", t));
    format!("{}.{}", ident(schema), ident(name))
}

pub(crate) fn err(what: &str, e: impl std::fmt::Display) -> BusError {
    BusError::Unreachable {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

pub(crate) async fn connect(pg: &Postgres) -> Result<tokio_postgres::Client, BusError> {
    connect_config(
        &pg.config,
        &format!("PostgreSQL {} ({})", pg.config.place(), pg.name),
    )
    .await
}

pub(crate) fn sql_err(e: tokio_postgres::Error) -> BusError {
    // The server's own message (`relation "x" does not exist`), not the driver's wrapper.
    match e.as_db_error() {
        Some(db) => BusError::Client(format!("PostgreSQL: {}", db.message())),
        None => BusError::Client(format!("PostgreSQL: {e}")),
    }
}

/// A query connection within `CONNECT`; `what` names it in errors, and a refused password
/// is an authentication error rather than an unreachable server.
pub(crate) async fn connect_config(
    cfg: &super::PostgresConfig,
    what: &str,
) -> Result<tokio_postgres::Client, BusError> {
    let (client, conn) =
        tokio::time::timeout(CONNECT, cfg.queries(CONNECT).connect(tokio_postgres::NoTls))
            .await
            .map_err(|_| err(what, format!("no answer within {} s", CONNECT.as_secs())))?
            .map_err(|e| {
                let text = e.to_string();
                if text.contains("password") || text.contains("authentication") {
                    BusError::Auth {
                        what: what.to_string(),
                        reason: text,
                    }
                } else {
                    err(what, e)
                }
            })?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}
