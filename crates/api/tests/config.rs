//! The command API without a broker: connection profiles and their validation, secrets kept
//! out of sight, and the schema store surviving restarts.

use sluice_api::{ConnectionAdd, ErrorCode, PasswordStore, Sluice};

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
    ConnectionAdd {
        name: name.into(),
        bus: "kafka".into(),
        brokers: "127.0.0.1:9092".into(),
        ..Default::default()
    }
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
        code(s.connection_add(ConnectionAdd {
            brokers: "host".into(),
            ..kafka("x")
        })),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(s.connection_add(ConnectionAdd {
            bus: "mqtt".into(),
            ..kafka("x")
        })),
        ErrorCode::InvalidInput
    );
    assert_eq!(
        code(s.connection_add(ConnectionAdd {
            username: Some("u".into()),
            ..kafka("x")
        })),
        ErrorCode::InvalidInput,
        "SASL without a password"
    );
    assert_eq!(
        code(s.connection_add(ConnectionAdd {
            tls_ca: Some("/nonexistent/ca.pem".into()),
            ..kafka("x")
        })),
        ErrorCode::NotFound
    );

    let added = s
        .connection_add(ConnectionAdd {
            sasl_mechanism: Some("scram-sha-256".into()),
            username: Some("ada".into()),
            password: Some("hunter2-secret".into()),
            ..kafka("prod")
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
        .schema_map("local", "orders", "Order", Some("OrderKey"))
        .unwrap();
    assert_eq!(
        (m.value_type.as_str(), m.key_type.as_deref()),
        ("shop.v1.Order", Some("shop.v1.OrderKey"))
    );
    assert_eq!(again.schema_list().unwrap().mappings.len(), 1);
    assert_eq!(
        again
            .schema_map("local", "orders", "Nope", None)
            .unwrap_err()
            .code,
        ErrorCode::Schema
    );
    assert_eq!(
        again
            .schema_map("ghost", "orders", "Order", None)
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
