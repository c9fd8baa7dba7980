//! Where and as whom to connect: what both clients (tokio-postgres for queries, the
//! replication client for the change stream) are configured from. The password is kept out
//! of Debug.

use std::time::Duration;

/// Session settings that fix how values are printed, whatever the server's defaults: ISO
/// dates (which `types.rs` reads), and floats in their shortest exact form.
const SESSION: &str = "-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3";

#[derive(Clone)]
pub struct PostgresConfig {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
    pub password: Option<String>,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl PostgresConfig {
    /// `HOST:PORT/DB`, for errors and listings.
    pub fn place(&self) -> String {
        format!("{}:{}/{}", self.host, self.port, self.database)
    }

    pub(crate) fn queries(&self, timeout: Duration) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.options(SESSION)
            .host(&self.host)
            .port(self.port)
            .dbname(&self.database)
            .user(&self.user)
            .application_name("sluice")
            .connect_timeout(timeout);
        if let Some(p) = &self.password {
            c.password(p);
        }
        c
    }

    pub(crate) fn replication(
        &self,
        slot: &str,
        publication: &str,
    ) -> pgwire_replication::ReplicationConfig {
        pgwire_replication::ReplicationConfig::new(
            self.host.clone(),
            self.user.clone(),
            self.password.clone().unwrap_or_default(),
            self.database.clone(),
            slot,
            publication,
        )
        .with_port(self.port)
        .with_options(SESSION)
        .with_application_name("sluice")
    }
}
