//! The command table: every command's name, argument type and result type. `Session::call`
//! dispatches on it (the window, `sluice serve`), and `typescript()` turns it and the types it
//! names into the UI's `bindings.ts` (`sluice dev bindings` prints it).

use super::app::*;
use super::connections::*;
use super::lake::*;
use super::reading::*;
use super::replay::*;
use super::schemas::*;
use super::Session;
use crate::error::{ApiError, ErrorCode, Result};
use crate::jobs::{JobInfo, JobUpdate};
use crate::render::EventView;
use crate::{ConnectionAdd, ConnectionAdded, ConnectionSummary, SchemaAdded, SchemaListing};
use sluice_bus::{Health, SourceInfo};
use ts_rs::TS;

/// `Session::call` and the `Commands` map from one list: name, argument type, result type.
macro_rules! commands {
    ($($name:ident($args:ty) -> $out:ty;)*) => {
        impl Session {
            /// Runs one command by name; the arguments are the command's JSON argument object.
            pub fn call(&self, command: &str, args: serde_json::Value) -> Result<serde_json::Value> {
                match command {
                    $(stringify!($name) => {
                        let args: $args = Session::args(command, args)?;
                        let out: $out = self.$name(args)?;
                        serde_json::to_value(out)
                            .map_err(|e| ApiError::new(ErrorCode::Io, e.to_string()))
                    })*
                    _ => Err(ApiError::new(
                        ErrorCode::NotFound,
                        format!("unknown command {command:?}"),
                    )),
                }
            }
        }

        /// Every command's name.
        pub const COMMANDS: &[&str] = &[$(stringify!($name)),*];

        fn commands_typescript(cfg: &ts_rs::Config) -> String {
            let mut out = String::from("export type Commands = {\n");
            $(out.push_str(&format!(
                "  {}: {{ args: {}; result: {} }};\n",
                stringify!($name),
                <$args as TS>::name(cfg),
                <$out as TS>::name(cfg),
            ));)*
            out.push_str("};\n");
            out
        }
    };
}

// Job commands (`tail_start`, `capture_start`, `redecode`, `replay_start`; `schema_map` and
// `schema_drop` start re-decodes) answer a job id; the CLI runs the same jobs through
// `Session::*_job` instead.
commands! {
    app_info(NoArgs) -> AppInfo;
    lake_open(LakeOpenArgs) -> AppInfo;
    bus_kinds(NoArgs) -> Vec<sluice_bus::BusKind>;
    connection_list(NoArgs) -> Vec<ConnectionSummary>;
    connection_get(NameArgs) -> ConnectionAdd;
    connection_add(ConnectionAdd) -> ConnectionAdded;
    connection_test(NameArgs) -> Health;
    connection_remove(NameArgs) -> ();
    topics(TopicsArgs) -> Vec<SourceInfo>;
    schema_list(NoArgs) -> SchemaListing;
    schema_drop(SchemaDropArgs) -> SchemaAdded;
    schema_map(SchemaMapArgs) -> MappingSet;
    redecode(SourceArgs) -> u64;
    schema_detect(SchemaDetectArgs) -> Vec<sluice_codec::Candidate>;
    tail_start(ReadArgs) -> u64;
    capture_start(ReadArgs) -> u64;
    job_poll(JobPollArgs) -> JobUpdate;
    job_stop(JobArgs) -> ();
    job_pause(JobPauseArgs) -> ();
    job_list(NoArgs) -> Vec<JobInfo>;
    filter_check(FilterArgs) -> ();
    search(SearchArgs) -> SearchPage;
    count(FilterArgs) -> u64;
    histogram(HistogramArgs) -> Histogram;
    fields(NoArgs) -> Vec<String>;
    event_get(IdArgs) -> EventView;
    replay_plan(ReplayArgs) -> ReplayPlan;
    replay_start(ReplayArgs) -> u64;
    replay_history(NoArgs) -> Vec<ReplayRecord>;
    export(ExportArgs) -> u64;
    lake_compact(CompactArgs) -> sluice_lake::CompactReport;
    lake_prune(PruneArgs) -> sluice_lake::PruneReport;
    bundle_export(BundleExportArgs) -> crate::BundleManifest;
    bundle_import(BundleImportArgs) -> crate::BundleImported;
    redact_list(NoArgs) -> Vec<crate::RedactRule>;
    redact_add(crate::RedactRule) -> Vec<crate::RedactRule>;
    redact_remove(RedactRemoveArgs) -> Vec<crate::RedactRule>;
}

/// Declares one named type (and, through the test below, proves nothing it needs is missing).
fn decl<T: TS + 'static>(cfg: &ts_rs::Config) -> String {
    format!("export {}\n", T::decl(cfg))
}

macro_rules! declared_types {
    ($($t:ty),* $(,)?) => {
        fn declarations(cfg: &ts_rs::Config) -> String {
            let mut out = String::new();
            $(out.push_str(&decl::<$t>(cfg));)*
            out
        }
        #[cfg(test)]
        fn declared_names(cfg: &ts_rs::Config) -> Vec<String> {
            vec![$(<$t as TS>::ident(cfg)),*]
        }
        #[cfg(test)]
        fn needed_names(cfg: &ts_rs::Config) -> Vec<String> {
            let mut v = Vec::new();
            $(v.extend(<$t as TS>::dependencies(cfg).into_iter().map(|d| d.ts_name));)*
            v
        }
    };
}

declared_types!(
    ApiError,
    ErrorCode,
    NoArgs,
    NameArgs,
    AppInfo,
    LakeOpenArgs,
    sluice_bus::BusKind,
    sluice_bus::Field,
    sluice_bus::FieldKind,
    sluice_bus::ReadMode,
    sluice_bus::Capabilities,
    ConnectionSummary,
    ConnectionAdd,
    sluice_bus::Settings,
    sluice_bus::kafka::KafkaSettings,
    sluice_bus::amqp::AmqpSettings,
    sluice_bus::sqs::SqsSettings,
    sluice_bus::nats::NatsSettings,
    sluice_bus::mqtt::MqttSettings,
    sluice_bus::redis::RedisSettings,
    sluice_bus::http::HttpSettings,
    sluice_bus::collector::CollectorSettings,
    sluice_bus::postgres::PostgresSettings,
    ConnectionAdded,
    crate::PasswordStore,
    Health,
    TopicsArgs,
    SourceInfo,
    sluice_bus::PartitionInfo,
    sluice_bus::ConsumerInfo,
    SchemaListing,
    crate::Mapping,
    DroppedFile,
    SchemaDropArgs,
    SchemaAdded,
    crate::SchemaProblem,
    SchemaMapArgs,
    crate::ReplayEdit,
    SourceArgs,
    SchemaDetectArgs,
    MappingSet,
    sluice_lake::RedecodeProgress,
    sluice_codec::Candidate,
    ReadArgs,
    JobArgs,
    JobPollArgs,
    JobPauseArgs,
    JobInfo,
    JobUpdate,
    EventView,
    crate::CaptureProgress,
    sluice_bus::Listening,
    sluice_replay::ReplayProgress,
    sluice_replay::ReplaySummary,
    FilterArgs,
    SearchArgs,
    SearchPage,
    EventRow,
    HistogramArgs,
    Histogram,
    IdArgs,
    ReplayArgs,
    ReplayPlan,
    PlanRow,
    ReplayRecord,
    ExportArgs,
    LakeScopeArgs,
    CompactArgs,
    PruneArgs,
    sluice_lake::CompactReport,
    sluice_lake::PruneReport,
    BundleExportArgs,
    BundleImportArgs,
    crate::BundleManifest,
    crate::BundleImported,
    sluice_lake::SourceCount,
    RedactRemoveArgs,
    crate::RedactRule,
    crate::RedactAction,
    crate::RedactAt,
);

/// The UI's `bindings.ts`: every type the commands use and the `Commands` map.
pub fn typescript() -> String {
    let cfg = ts_rs::Config::new().with_large_int("number");
    format!(
        "// Generated from the Rust API types by `sluice dev bindings`; do not edit.\n\
         // A test fails when this file is out of date (see crates/api/src/commands/table.rs).\n\n\
         export type JsonValue = number | string | boolean | Array<JsonValue> | {{ [key in string]?: JsonValue }} | null;\n\n{}\n{}",
        declarations(&cfg),
        commands_typescript(&cfg)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sluice;

    #[test]
    fn every_type_the_bindings_need_is_declared() {
        let cfg = ts_rs::Config::new().with_large_int("number");
        let declared = declared_names(&cfg);
        for needed in needed_names(&cfg) {
            assert!(
                declared.contains(&needed) || needed == "JsonValue",
                "{needed} is used by a command type but not declared in bindings.ts"
            );
        }
    }

    /// CI's check that the checked-in bindings are current: regenerate with
    /// `SLUICE_BLESS=1 cargo test -p sluice-api bindings` (or `sluice dev bindings`).
    #[test]
    fn checked_in_bindings_are_current() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/bindings.ts");
        let now = typescript();
        if std::env::var_os("SLUICE_BLESS").is_some() {
            std::fs::write(&path, &now).unwrap();
        }
        let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            checked_in == now,
            "ui/src/bindings.ts is out of date: run SLUICE_BLESS=1 cargo test -p sluice-api bindings"
        );
    }

    #[test]
    fn unknown_commands_and_bad_arguments_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let s = Session::new(
            Sluice::new(Some(dir.path().join("c")), Some(dir.path().join("l"))).unwrap(),
        );
        let e = s.call("drop_tables", serde_json::json!({})).unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound);
        let e = s
            .call("search", serde_json::json!({"filter": 3}))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidInput);
        assert!(e.message.starts_with("search: "), "{}", e.message);
        let e = s
            .call("filter_check", serde_json::json!({"filter": "status = "}))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::Filter);
        assert!(e.message.contains("column"), "{}", e.message);
        assert!(COMMANDS.contains(&"replay_start"));
    }

    #[test]
    fn bus_kinds_lists_every_bus_and_the_ui_fixture_is_current() {
        let dir = tempfile::tempdir().unwrap();
        let s = Session::new(
            Sluice::new(Some(dir.path().join("c")), Some(dir.path().join("l"))).unwrap(),
        );
        let kinds = s.call("bus_kinds", serde_json::Value::Null).unwrap();
        let buses: Vec<&str> = kinds
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["bus"].as_str().unwrap())
            .collect();
        assert_eq!(
            buses,
            [
                "kafka",
                "amqp",
                "sqs",
                "nats",
                "mqtt",
                "redis",
                "http",
                "collector",
                "postgres"
            ]
        );
        assert!(typescript().contains("bus_kinds: { args: NoArgs; result: Array<BusKind> }"));
        // The UI's tests render forms and read modes from this file: it must be what the API
        // answers, or they test buses that do not exist (bless as for the bindings).
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../ui/src/connections/bus-kinds.fixture.json");
        let now = serde_json::to_string_pretty(&kinds).unwrap() + "\n";
        if std::env::var_os("SLUICE_BLESS").is_some() {
            std::fs::write(&path, &now).unwrap();
        }
        assert!(
            std::fs::read_to_string(&path).unwrap_or_default() == now,
            "ui/src/connections/bus-kinds.fixture.json is out of date: run SLUICE_BLESS=1 cargo test -p sluice-api bus_kinds"
        );
    }
}
