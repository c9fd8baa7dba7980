//! Every construct of the filter language, its SQL shape and bound parameters, error columns,
//! and hostile input staying inside parameters.

use sluice_filter::{to_sql, Param};

const NOW: i64 = 1_800_000_000_000_000;

fn sql(f: &str) -> (String, Vec<Param>) {
    let c = to_sql(f, NOW).unwrap_or_else(|e| panic!("{f:?} failed: {e}"));
    (c.where_sql, c.params)
}

fn err(f: &str) -> (usize, String) {
    let e = to_sql(f, NOW).expect_err(f);
    (e.column, e.message)
}

fn text(s: &str) -> Param {
    Param::Text(s.into())
}

#[test]
fn empty_filter_matches_everything() {
    assert_eq!(sql("  ").0, "TRUE");
}

#[test]
fn free_text_is_a_case_insensitive_substring_test() {
    let (s, p) = sql("\"Payment Declined\"");
    assert_eq!(
        s,
        "sluice_icontains(coalesce(decoded, payload_text, ''), ?)"
    );
    assert_eq!(p, vec![text("Payment Declined")]);
    let (s, p) = sql("timeout retry");
    assert!(
        s.starts_with("(sluice_icontains") && s.contains(" AND "),
        "{s}"
    );
    assert_eq!(p, vec![text("timeout"), text("retry")]);
    let (_, p) = sql("\"a.b*(c)\"");
    assert_eq!(p, vec![text("a.b*(c)")], "the term is passed as it is");
}

#[test]
fn decoded_paths_become_bound_json_paths() {
    let (s, p) = sql("order.customer.id = 42");
    assert_eq!(
        s,
        "(contains(decoded, ?) AND (TRY_CAST(json_extract_string(decoded, ?) AS DOUBLE) = ?))"
    );
    let path = text("$.\"order\".\"customer\".\"id\"");
    assert_eq!(p, vec![text("42"), path, Param::Float(42.0)]);
    let (_, p) = sql("items[0].sku = \"A-1\"");
    assert_eq!(
        p,
        vec![text("A-1"), text("$.\"items\"[0].\"sku\""), text("A-1")]
    );
    let (_, p) = sql("note = 'say \"hi\"'");
    assert_eq!(p[0], text("say \\\"hi\\\""), "the guard uses JSON escaping");
    let (s, _) = sql("amount = 100.5");
    assert!(
        !s.contains("contains"),
        "no guard where the text form is uncertain: {s}"
    );
    let (s, _) = sql("status != \"OK\"");
    assert!(!s.contains("contains"), "{s}");
    let (s, p) = sql("amount > 100.5");
    assert!(s.contains("AS DOUBLE) > ?"), "{s}");
    assert_eq!(p[1], Param::Float(100.5));
    let (s, p) = sql("status in (\"FAILED\", \"RETRY\")");
    assert_eq!(s.matches(" OR ").count(), 1, "{s}");
    let status = text("$.\"status\"");
    assert_eq!(
        p,
        vec![
            text("FAILED"),
            status.clone(),
            text("FAILED"),
            text("RETRY"),
            status,
            text("RETRY")
        ]
    );
    let (s, p) = sql("exists(refund)");
    assert_eq!(s, "(json_extract(decoded, ?) IS NOT NULL)");
    assert_eq!(p, vec![text("$.\"refund\"")]);
    let (_, p) = sql("decoded.source = x");
    assert_eq!(p[1], text("$.\"source\""));
    let (s, _) = sql("active = true");
    assert!(s.contains("json_extract_string(decoded, ?) = ?"), "{s}");
}

#[test]
fn event_prefix_reaches_all_metadata_and_bare_common_names_stay_in_the_payload() {
    assert_eq!(
        sql("event.size > 10"),
        ("(size > ?)".into(), vec![Param::Int(10)])
    );
    assert_eq!(sql("event.id = x").0, "(id = ?)");
    assert_eq!(sql("event.encoding = json").0, "(encoding = ?)");
    assert_eq!(sql("event.bus = kafka").0, "(bus = ?)");
    assert!(sql("event.timestamp >= \"2026-11-20T10:00:00Z\"")
        .0
        .contains("epoch_us(timestamp)"));
    for bare in ["id", "size", "timestamp", "encoding", "bus"] {
        let (s, p) = sql(&format!("{bare} = 5"));
        assert!(s.contains("json_extract_string(decoded"), "{bare}: {s}");
        assert_eq!(p[1], text(&format!("$.\"{bare}\"")));
    }
    let (col, msg) = err("event.nope = 1");
    assert_eq!(col, 7);
    assert!(msg.contains("unknown event field"), "{msg}");
}

#[test]
fn metadata_fields_use_their_columns() {
    assert_eq!(
        sql("source = orders"),
        ("(source = ?)".into(), vec![text("orders")])
    );
    assert_eq!(sql("topic = orders").0, "(source = ?)");
    assert_eq!(
        sql("partition = 3"),
        ("(partition = ?)".into(), vec![Param::Int(3)])
    );
    assert_eq!(
        sql("offset >= 1000"),
        ("(\"offset\" >= ?)".into(), vec![Param::Int(1000)])
    );
    assert_eq!(
        sql("key = \"abc\""),
        ("(key = ?)".into(), vec![Param::Blob(b"abc".to_vec())])
    );
    assert_eq!(
        sql("schema = shop.v1.Order"),
        ("(schema = ?)".into(), vec![text("shop.v1.Order")])
    );
    assert_eq!(sql("decode_error exists").0, "(decode_error IS NOT NULL)");
    let (s, p) = sql("header.trace-id = \"x\"");
    assert_eq!(
        s,
        "(len(list_filter(headers, h -> h.key = ? AND h.value = ?)) > 0)"
    );
    assert_eq!(p, vec![text("trace-id"), Param::Blob(b"x".to_vec())]);
    let (s, _) = sql("source ~ \"ord.*\"");
    assert!(s.starts_with("regexp_matches(coalesce(source"), "{s}");
}

#[test]
fn time_terms_bind_microseconds() {
    assert_eq!(
        sql("after:2026-11-20T10:00:00Z"),
        (
            "(epoch_us(timestamp) >= ?)".into(),
            vec![Param::Int(1_795_168_800_000_000)]
        )
    );
    assert_eq!(
        sql("before:2026-11-20").1,
        vec![Param::Int(1_795_132_800_000_000)]
    );
    assert_eq!(
        sql("last:15m").1,
        vec![Param::Int(NOW - 15 * 60 * 1_000_000)]
    );
}

#[test]
fn boolean_structure_and_precedence() {
    let (s, _) = sql("a = 1 or b = 2 and c = 3");
    assert!(
        s.starts_with("((contains") && s.contains(" OR ((contains"),
        "{s}"
    );
    let (s, _) = sql("(a = 1 or b = 2) and not c = 3");
    assert!(s.contains("(NOT coalesce("), "{s}");
    assert!(
        s.find(" OR ").unwrap() < s.find(" AND (NOT").unwrap(),
        "{s}"
    );
}

#[test]
fn hostile_values_stay_in_parameters() {
    for hostile in [
        "x'; DROP TABLE events; --",
        "\") OR 1=1 --",
        "'; COPY events TO '/tmp/x.csv'; SELECT '",
        "SELECT * FROM read_csv('/etc/passwd')",
    ] {
        let quoted = format!("\"{}\"", hostile.replace('"', "\\\""));
        for f in [
            format!("status = {quoted}"),
            format!("source = {quoted}"),
            quoted.clone(),
            format!("header.h = {quoted}"),
        ] {
            let (s, p) = sql(&f);
            assert!(
                !s.contains("DROP")
                    && !s.contains("COPY")
                    && !s.contains("passwd")
                    && !s.contains("1=1"),
                "{f} -> {s}"
            );
            assert!(
                p.iter().any(|p| match p {
                    Param::Text(t) => t.to_lowercase() == hostile.to_lowercase(),
                    Param::Blob(b) => b == hostile.as_bytes(),
                    _ => false,
                }),
                "{f}: {p:?}"
            );
        }
    }
    // Paths too are parameters, never identifiers.
    let (s, p) = sql("a;DROP = 1");
    assert!(!s.contains("DROP"));
    assert_eq!(p[1], text("$.\"a;DROP\""));
}

#[test]
fn syntax_errors_name_the_column() {
    assert_eq!(err("status = ").0, 10);
    assert!(err("status = ").1.contains("expected a value"));
    assert_eq!(err("(a = 1").0, 7);
    assert_eq!(err("a = 1)").0, 6);
    assert_eq!(err("name = \"open").0, 8);
    assert!(err("name = \"open").1.contains("unterminated"));
    assert_eq!(err("partition = abc").0, 1);
    assert!(err("x ~ \"(\"").1.contains("regular expression"));
    assert_eq!(err("after:yesterday").0, 7);
    assert_eq!(err("last:soon").0, 6);
    assert_eq!(err("status in \"A\"").0, 11);
    assert_eq!(err("a ! b").0, 3);
    assert_eq!(err("items[x] = 1").0, 7);
}

fn needs(f: &str) -> sluice_filter::Needs {
    to_sql(f, NOW).unwrap().needs
}

fn contains(text: &str, whole: bool) -> sluice_filter::Needs {
    sluice_filter::Needs::Contains {
        text: text.into(),
        whole,
    }
}

#[test]
fn needs_are_what_every_match_must_contain() {
    use sluice_filter::Needs::*;
    assert_eq!(needs(""), Anything);
    assert_eq!(
        needs("\"payment declined\""),
        contains("payment declined", false)
    );
    assert_eq!(needs("customer.id = 4242"), Number("4242".into()));
    assert_eq!(needs("customer.id = -7"), Number("7".into()));
    assert_eq!(needs("status = \"A\\\"B\""), contains("A\\\"B", true));
    assert_eq!(
        needs("status in (PAID, FAILED) and partition = 1"),
        Any(vec![contains("PAID", true), contains("FAILED", true)])
    );
    assert_eq!(
        needs("a and (b or c)"),
        All(vec![
            contains("a", false),
            Any(vec![contains("b", false), contains("c", false)])
        ])
    );
    // Anything that a file without the text could still satisfy gives no condition.
    for f in [
        "not zebra",
        "zebra or partition = 1",
        "amount > 3",
        "status != PAID",
        "status ~ PA",
        "exists(refund)",
        "header.x = \"y\"",
        "amount = 1.5",
    ] {
        assert_eq!(needs(f), Anything, "{f}");
    }
    assert_eq!(needs("last:1m"), TimeFrom(NOW - 60_000_000));
    assert!(matches!(
        needs("before:2026-01-01T00:00:00Z"),
        TimeBefore(_)
    ));
}
