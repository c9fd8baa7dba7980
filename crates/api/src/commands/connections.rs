//! Connections: adding, checking and removing them, and listing what they can read.

use super::app::{NameArgs, NoArgs};
use super::Session;
use crate::error::Result;
use crate::{ConnectionAdd, ConnectionAdded, ConnectionSummary};
use serde::Deserialize;
use sluice_bus::{Health, SourceInfo};
use ts_rs::TS;

/// A connection's topics, exchanges or queues; `only` names the ones wanted (AMQP without the
/// management API checks each by passive declare).
#[derive(Debug, Deserialize, TS)]
pub struct TopicsArgs {
    pub name: String,
    #[serde(default)]
    #[ts(optional = nullable)]
    pub only: Vec<String>,
}

impl Session {
    pub fn connection_list(&self, _: NoArgs) -> Result<Vec<ConnectionSummary>> {
        self.sluice().connection_list()
    }

    /// The saved settings of a connection, for its edit form (never the password).
    pub fn connection_get(&self, a: NameArgs) -> Result<ConnectionAdd> {
        self.sluice().connection_get(&a.name)
    }

    pub fn connection_add(&self, a: ConnectionAdd) -> Result<ConnectionAdded> {
        self.sluice().connection_add(a)
    }

    pub fn connection_test(&self, a: NameArgs) -> Result<Health> {
        self.sluice().connection_test(&a.name)
    }

    pub fn connection_remove(&self, a: NameArgs) -> Result<()> {
        self.sluice().connection_remove(&a.name)
    }

    pub fn topics(&self, a: TopicsArgs) -> Result<Vec<SourceInfo>> {
        self.sluice().topics(&a.name, &a.only)
    }
}
