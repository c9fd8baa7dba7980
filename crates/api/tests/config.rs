//! The command API without a broker: connection profiles and their validation, secrets kept
//! out of sight, and the schema store surviving restarts.

use sluice_api::{ConnectionAdd, ErrorCode, PasswordStore, Settings, Sluice};
use sluice_bus::kafka::KafkaSettings;

fn sluice() -> (tempfile::TempDir, Sluice) {
    // SAFETY: tests in this binary only ever set this variable to the same value.
    unsafe { std::env::set_var("SLUICE_KEYRING", "off") };
    let dir = tempfile::tempdir().unwrap();
    let s = Sluice::new(
        Some(dir.path().join("config")),
        Some(dir.path().join("lake")),
    )
    .unwrap();
    (dir, s)
}

fn kafka(name: &str) -> ConnectionAdd {
    kafka_with(name, KafkaSettings::default())
}

fn kafka_with(name: &str, k: KafkaSettings) -> ConnectionAdd {
    ConnectionAdd::new(
        name,
        Settings::Kafka(KafkaSettings {
            brokers: if k.brokers.is_empty() {
                "127.0.0.1:9092".into()
            } else {
                k.brokers
            },
            ..k
        }),
    )
}

#[test]
fn connections_are_validated_and_secrets_stay_hidden() {
    let (_d, s) = sluice();
    let code = |r: Result<_, sluice_api::ApiError>| r.map(|_| ()).unwrap_err().code;
    assert_eq!(
        code(s.connection_add(ConnectionAdd {
            name: "a b".into(),
            ..kafka("x")
        })),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(s.connection_add(kafka_with(
            "x",
            KafkaSettings {
                brokers: "host".into(),
                ..Default::default()
            }
        ))),
        ErrorCode::InvalidInput
    );
    // A bus Sluice does not know cannot even be written down as settings; through the
    // command table (what the CLI, the app and `sluice serve` call) it is invalid input.
    let session = sluice_api::Session::new(s.clone());
    let unknown = session
        .call(
            "connection_add",
            serde_json::json!({"name": "x", "bus": "mqtt", "brokers": "h:1"}),
        )
        .unwrap_err();
    assert_eq!(unknown.code, ErrorCode::InvalidInput, "{}", unknown.message);
    assert_eq!(
        code(s.connection_add(kafka_with(
            "x",
            KafkaSettings {
                username: Some("u".into()),
                ..Default::default()
            }
        ))),
        ErrorCode::InvalidInput,
        "SASL without a password"
    );
    assert_eq!(
        code(s.connection_add(kafka_with(
            "x",
            KafkaSettings {
                tls_ca: Some("/nonexistent/ca.pem".into()),
                ..Default::default()
            }
        ))),
        ErrorCode::NotFound
    );

    let added = s
        .connection_add(ConnectionAdd {
            password: Some("hunter2-secret".into()),
            ..kafka_with(
                "prod",
                KafkaSettings {
                    sasl_mechanism: Some("scram-sha-256".into()),
                    username: Some("ada".into()),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert_eq!(added.password_store, Some(PasswordStore::File));
    assert!(added.warning.unwrap().contains("readable only by you"));
    let cfg_path = s.config_dir.join("config.toml");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&cfg_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let list = s.connection_list().unwrap();
    assert_eq!(list[0].auth, "SASL SCRAM-SHA-256 as ada");
    let shown = format!(
        "{list:?} {:?}",
        sluice_api::Config::load(&s.config_dir).unwrap()
    );
    assert!(!shown.contains("hunter2"), "Debug output redacts: {shown}");
    assert_eq!(
        code(s.connection_add(kafka("prod"))),
        ErrorCode::AlreadyExists
    );
    s.connection_remove("prod").unwrap();
    assert!(!std::fs::read_to_string(&cfg_path)
        .unwrap()
        .contains("hunter2"));
    let err = s.connection_test("prod").unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.message.contains("unknown connection"));
}

/// A config.toml written before settings were typed (one flat set of fields for every bus:
/// `brokers` held the AMQP URL and the SQS endpoint, `sasl_username` the SQS access key id)
/// still loads, keeps its meaning, and is written back in the new shape.
#[test]
fn old_config_files_migrate_on_read() {
    let (_d, s) = sluice();
    std::fs::create_dir_all(&s.config_dir).unwrap();
    let old = r#"
[connections.k]
bus = "kafka"
brokers = "b1:9092,b2:9092"
sasl_mechanism = "PLAIN"
sasl_username = "ada"
password_store = "file"
password = "pw-secret"
tls = false

[connections.r]
bus = "amqp"
brokers = "amqp://guest@127.0.0.1:5672/%2f"
sasl_username = "guest"
management_url = "http://127.0.0.1:15672"
tls = false

[connections.q]
bus = "sqs"
brokers = "http://127.0.0.1:4566"
sasl_username = "AKIDEXAMPLE"
tls = false
region = "eu-west-1"
endpoint_url = "http://127.0.0.1:4566"
registry_url = "http://127.0.0.1:8081"

[[mappings]]
connection = "k"
topic = "orders"
value_type = "shop.v1.Order"
"#;
    std::fs::write(s.config_dir.join("config.toml"), old).unwrap();
    let list = s.connection_list().unwrap();
    let row = |n: &str| list.iter().find(|c| c.name == n).unwrap().clone();
    assert_eq!(
        (
            row("k").bus.as_str(),
            row("k").brokers.as_str(),
            row("k").auth.as_str()
        ),
        ("kafka", "b1:9092,b2:9092", "SASL PLAIN as ada")
    );
    assert_eq!(
        (
            row("r").bus.as_str(),
            row("r").brokers.as_str(),
            row("r").auth.as_str()
        ),
        ("amqp", "amqp://guest@127.0.0.1:5672/%2f", "user guest")
    );
    assert_eq!(
        (
            row("q").bus.as_str(),
            row("q").brokers.as_str(),
            row("q").auth.as_str()
        ),
        ("sqs", "http://127.0.0.1:4566", "access key AKIDEXAMPLE")
    );
    assert_eq!(row("q").registry.as_deref(), Some("http://127.0.0.1:8081"));
    let q = s.connection_get("q").unwrap();
    match &q.settings {
        Settings::Sqs(sqs) => {
            assert_eq!(sqs.region, "eu-west-1");
            assert_eq!(sqs.access_key_id.as_deref(), Some("AKIDEXAMPLE"));
        }
        other => panic!("q is an SQS connection, not {other:?}"),
    }
    // Saving writes the typed shape, which loads to the same settings.
    let cfg = sluice_api::Config::load(&s.config_dir).unwrap();
    cfg.save(&s.config_dir).unwrap();
    let text = std::fs::read_to_string(s.config_dir.join("config.toml")).unwrap();
    assert!(
        text.contains("url = \"amqp://guest@127.0.0.1:5672/%2f\""),
        "{text}"
    );
    assert!(text.contains("access_key_id = \"AKIDEXAMPLE\""), "{text}");
    assert_eq!(sluice_api::Config::load(&s.config_dir).unwrap(), cfg);
    assert_eq!(s.schema_list().unwrap().mappings.len(), 1);
}

/// What the window sends (`connection_add` JSON, flat, `bus` naming the settings) is what the
/// settings types read: the old key for the AMQP URL is still accepted.
#[test]
fn connection_add_reads_each_bus_fields() {
    let (_d, s) = sluice();
    let session = sluice_api::Session::new(s.clone());
    let add = |v: serde_json::Value| session.call("connection_add", v);
    add(serde_json::json!({"name": "r", "bus": "amqp", "brokers": "amqp://u:pw-secret@127.0.0.1:5672/%2f",
        "region": null, "tls": false})).unwrap();
    add(
        serde_json::json!({"name": "q", "bus": "sqs", "region": "us-east-1",
        "endpoint_url": "http://127.0.0.1:1", "access_key_id": "AK", "password": "sk-secret"}),
    )
    .unwrap();
    let missing = add(serde_json::json!({"name": "q2", "bus": "sqs"})).unwrap_err();
    assert_eq!(missing.code, ErrorCode::InvalidInput);
    assert!(
        missing.message.contains("--region is required"),
        "{}",
        missing.message
    );
    let text = std::fs::read_to_string(s.config_dir.join("config.toml")).unwrap();
    assert!(!text.contains("pw-secret") || text.contains("password = \"pw-secret\""));
    assert!(
        text.contains("url = \"amqp://u@127.0.0.1:5672/%2f\""),
        "the password left the URL: {text}"
    );
    let list = s.connection_list().unwrap();
    assert_eq!(
        list.iter().map(|c| c.auth.as_str()).collect::<Vec<_>>(),
        ["access key AK", "user u"]
    );
}

#[test]
fn schemas_persist_and_mappings_resolve_short_names() {
    let (d, s) = sluice();
    s.connection_add(kafka("local")).unwrap();
    let protos = std::path::PathBuf::from(manifest_dir()).join("../../protos");
    let added = s.schema_add(&[protos], &[]).unwrap();
    assert!(added.errors.is_empty(), "{:?}", added.errors);
    assert!(added.message_types.contains(&"shop.v1.Order".to_string()));

    // A fresh instance over the same folders sees the same schemas (they survive restarts).
    let again = Sluice::new(Some(s.config_dir.clone()), Some(d.path().join("lake"))).unwrap();
    let m = again
        .schema_map("local", "orders", "Order", Some("OrderKey"), false)
        .unwrap();
    assert_eq!(
        (m.value_type.as_str(), m.key_type.as_deref()),
        ("shop.v1.Order", Some("shop.v1.OrderKey"))
    );
    assert_eq!(again.schema_list().unwrap().mappings.len(), 1);
    assert_eq!(
        again
            .schema_map("local", "orders", "Nope", None, false)
            .unwrap_err()
            .code,
        ErrorCode::Schema
    );
    assert_eq!(
        again
            .schema_map("ghost", "orders", "Order", None, false)
            .unwrap_err()
            .code,
        ErrorCode::NotFound
    );

    // Re-adding an edited file replaces its earlier version.
    let dir = d.path().join("edit");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("e.proto"),
        "syntax = \"proto3\"; package e; message A { string x = 1; }",
    )
    .unwrap();
    s.schema_add(&[dir.join("e.proto")], &[]).unwrap();
    std::fs::write(
        dir.join("e.proto"),
        "syntax = \"proto3\"; package e; message B { string x = 1; }",
    )
    .unwrap();
    s.schema_add(&[dir.join("e.proto")], &[]).unwrap();
    let types = s.schema_list().unwrap().message_types;
    assert!(
        types.contains(&"e.B".to_string()) && !types.contains(&"e.A".to_string()),
        "{types:?}"
    );

    let missing = s
        .schema_add(&[d.path().join("missing.proto")], &[])
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);
}

#[test]
fn filters_report_their_column() {
    let (_d, s) = sluice();
    let err = s.search("status = ", 10, 0).unwrap_err();
    assert_eq!(err.code, ErrorCode::Filter);
    assert!(err.message.contains("column 10"), "{}", err.message);
    assert!(
        s.search("", 10, 0).unwrap().is_empty(),
        "an empty lake searches fine"
    );
}

/// Read when the test runs (cargo sets it), not baked in at build time: build artifacts are
/// shared between clones, so a compiled-in path can point at a clone that is gone.
fn manifest_dir() -> String {
    std::env::var("CARGO_MANIFEST_DIR").expect("run under cargo test")
}
