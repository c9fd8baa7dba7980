//! The filter language: any text parses and compiles, or fails with a column inside it; a
//! compiled filter binds exactly one parameter per `?`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match sluice_filter::to_sql(text, 1_800_000_000_000_000) {
        Ok(c) => assert_eq!(
            c.where_sql.matches('?').count(),
            c.params.len(),
            "{text:?} -> {}",
            c.where_sql
        ),
        Err(e) => assert!(
            (1..=text.chars().count() + 1).contains(&e.column),
            "{text:?}: column {} is outside the filter: {e}",
            e.column
        ),
    }
});
