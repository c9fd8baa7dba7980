//! Hostile filter shapes: deep nesting, huge inputs and long chains get a clear error (or a
//! flat result) in bounded stack. Each case runs on a 256 KiB stack, an eighth of a tokio
//! worker's, so a recursion that grows with the input overflows here and fails the test.

use sluice_filter::{
    parse, to_sql, Expr, FilterError, Value, MAX_DEPTH, MAX_FILTER_BYTES, MAX_TERMS,
};

const NOW: i64 = 1_800_000_000_000_000;

/// Runs parse, compile, `Debug` and drop of `filter` on a small stack.
fn small_stack(filter: String) -> Result<String, FilterError> {
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let parsed = parse(&filter);
            if let Ok(Some(e)) = &parsed {
                assert!(!format!("{e:?}").is_empty());
            }
            drop(parsed);
            to_sql(&filter, NOW).map(|c| c.where_sql)
        })
        .expect("spawn")
        .join()
        .expect("the filter thread panicked")
}

fn nested(open: &str, depth: usize, inner: &str, close: &str) -> String {
    format!("{}{inner}{}", open.repeat(depth), close.repeat(depth))
}

#[test]
fn deep_parentheses_are_an_error_at_the_first_level_too_many() {
    // 60 KB, under the length limit: the depth limit answers.
    let e = small_stack(nested("(", 30_000, "a", ")")).unwrap_err();
    assert_eq!(e.column, MAX_DEPTH + 1, "{e}");
    assert!(e.message.contains(&MAX_DEPTH.to_string()), "{e}");
    // 200 KB: refused for its length before anything recurses.
    let e = small_stack(nested("(", 100_000, "a", ")")).unwrap_err();
    assert_eq!(e.column, MAX_FILTER_BYTES + 1, "{e}");
    // The 2,100 levels that used to abort `sluice serve`.
    let e = small_stack(nested("(", 2_100, "a", ")")).unwrap_err();
    assert_eq!(e.column, MAX_DEPTH + 1, "{e}");
    // Unbalanced: only opening parentheses.
    let e = small_stack("(".repeat(60_000)).unwrap_err();
    assert_eq!(e.column, MAX_DEPTH + 1, "{e}");
}

#[test]
fn nesting_up_to_the_limit_still_compiles() {
    let sql = small_stack(nested("(", MAX_DEPTH, "a = 1 or b", ")")).unwrap();
    assert!(sql.contains(" OR "), "{sql}");
    let sql = small_stack(nested("(not ", MAX_DEPTH / 2, "a", ")")).unwrap();
    assert_eq!(sql.matches("NOT coalesce").count(), MAX_DEPTH / 2, "{sql}");
    let e = small_stack(nested("(not ", MAX_DEPTH / 2 + 1, "a", ")")).unwrap_err();
    assert!(e.message.contains("nests too deep"), "{e}");
}

#[test]
fn not_chains_are_bounded() {
    let sql = small_stack(format!("{}a", "not ".repeat(MAX_DEPTH))).unwrap();
    assert_eq!(sql.matches("NOT coalesce").count(), MAX_DEPTH);
    let e = small_stack(format!("{}a", "not ".repeat(MAX_DEPTH + 1))).unwrap_err();
    assert_eq!(e.column, 4 * MAX_DEPTH + 1, "the `not` past the limit: {e}");
    let e = small_stack(format!("{}a", "not ".repeat(10_000))).unwrap_err();
    assert_eq!(e.column, 4 * MAX_DEPTH + 1, "{e}");
}

#[test]
fn an_over_long_filter_is_refused_where_it_crosses_the_limit() {
    // The 1.8 MB implicit `and` chain that used to abort `sluice serve`.
    let e = small_stack("a ".repeat(900_000)).unwrap_err();
    assert_eq!(e.column, MAX_FILTER_BYTES + 1, "{e}");
    assert!(e.message.contains("64 KiB"), "{e}");
    // Columns count characters, not bytes.
    let e = small_stack("é".repeat(MAX_FILTER_BYTES)).unwrap_err();
    assert_eq!(e.column, MAX_FILTER_BYTES / 2 + 1, "{e}");
}

#[test]
fn implicit_and_chains_compile_flat() {
    let sql = small_stack("a ".repeat(MAX_TERMS)).unwrap();
    assert_eq!(sql.matches(" AND ").count(), MAX_TERMS - 1);
    assert!(!sql.starts_with("(("), "one flat list: {}", &sql[..40]);
    let e = small_stack("a ".repeat(MAX_TERMS + 1)).unwrap_err();
    assert_eq!(e.column, 2 * MAX_TERMS + 1, "the first term too many: {e}");
    assert!(e.message.contains(&MAX_TERMS.to_string()), "{e}");
}

#[test]
fn or_chains_compile_flat() {
    let chain = vec!["x = 1"; MAX_TERMS].join(" or ");
    let sql = small_stack(chain.clone()).unwrap();
    assert_eq!(sql.matches(" OR ").count(), MAX_TERMS - 1);
    let Ok(Some(Expr::Or(parts))) = parse(&chain) else {
        panic!("not an or");
    };
    assert_eq!(parts.len(), MAX_TERMS);
    assert!(parts.iter().all(|p| matches!(p, Expr::Compare(_))));
    // Mixed chains keep precedence: an `or` of flat `and`s.
    let Ok(Some(Expr::Or(parts))) = parse("a b c or d e or (f or g)") else {
        panic!("not an or");
    };
    assert_eq!(parts.len(), 4, "(f or g) joins the outer list: {parts:?}");
    assert!(matches!(&parts[0], Expr::And(v) if v.len() == 3));
    // `in` values count as terms too.
    let list = vec!["1"; MAX_TERMS + 1].join(",");
    let e = small_stack(format!("a in ({list})")).unwrap_err();
    assert!(e.message.contains("terms"), "{e}");
}

#[test]
fn numbers_outside_f64_range_are_errors_not_text() {
    for (f, column) in [
        ("i > 1e309", 5),
        ("i = -1e309", 5),
        ("x and amount < 1e-400", 16),
        ("i in (1, 2e308)", 10),
    ] {
        let e = to_sql(f, NOW).expect_err(f);
        assert_eq!(e.column, column, "{f}: {e}");
        assert!(e.message.contains("outside the range"), "{f}: {e}");
    }
    let num = |f: &str| match parse(f).unwrap() {
        Some(Expr::Compare(c)) => c.values[0].clone(),
        other => panic!("{f}: {other:?}"),
    };
    assert_eq!(num("i > 1e308"), Value::Num(1e308));
    assert_eq!(num("i > 1e-310"), Value::Num(1e-310), "subnormals are kept");
    assert_eq!(num("i > 0e999"), Value::Num(0.0));
    assert_eq!(num("i > \"1e309\""), Value::Str("1e309".into()));
    assert_eq!(num("name = inf"), Value::Str("inf".into()));
    assert_eq!(num("name = Infinity"), Value::Str("Infinity".into()));
    assert_eq!(num("name = nan"), Value::Str("nan".into()));
}
