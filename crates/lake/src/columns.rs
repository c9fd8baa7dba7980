//! The lake's one column table. Each column's name, type and place in files, how a read selects
//! it and how the writer stores it are written here once; the Parquet schema, the typed `events`
//! view of an empty lake, the SELECT lists of reads, the writer's per-column settings and the
//! names row decoding looks values up by are all derived from it.
//!
//! Adding a column: an entry in `COLUMNS` after the last file column, nullable (files written
//! before lack it, and every read goes by name, so they read it as NULL), the `Event`/`EventRef`
//! field it fills, its builder in `schema` and its line in `rows`; the tests below fail until
//! the schema written and the table agree. The order and types of the existing entries are the
//! layout of every lake already on disk: never change them
//! (`tests::files_keep_the_layout_old_lakes_have`).

use arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
use std::sync::Arc;

/// A column's type, as Arrow (files and batches) and DuckDB (the empty view) spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Text,
    Int32,
    Int64,
    Blob,
    Bool,
    /// Microseconds, UTC.
    Time,
    /// A list of `{key: text, value: blob or null}`, in order, duplicates kept.
    Headers,
    /// A day; only ever a folder name, which hive partitioning types.
    Date,
}

impl Ty {
    pub(crate) fn arrow(self) -> DataType {
        match self {
            Ty::Text => DataType::Utf8,
            Ty::Int32 => DataType::Int32,
            Ty::Int64 => DataType::Int64,
            Ty::Blob => DataType::Binary,
            Ty::Bool => DataType::Boolean,
            Ty::Time => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Ty::Headers => DataType::List(Arc::new(header_item())),
            Ty::Date => DataType::Date32,
        }
    }

    fn duckdb(self) -> &'static str {
        match self {
            Ty::Text => "VARCHAR",
            Ty::Int32 => "INTEGER",
            Ty::Int64 => "BIGINT",
            Ty::Blob => "BLOB",
            Ty::Bool => "BOOLEAN",
            Ty::Time => "TIMESTAMPTZ",
            Ty::Headers => "STRUCT(key VARCHAR, value BLOB)[]",
            Ty::Date => "DATE",
        }
    }
}

/// The fields of one header.
pub(crate) fn header_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("value", DataType::Binary, true),
    ])
}

/// The list item of `headers`.
pub(crate) fn header_item() -> Field {
    Field::new("item", DataType::Struct(header_fields()), true)
}

/// Where a column's values are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    /// Inside every file.
    File,
    /// In the lake's folder names (`connection=...`), and inside a file only for standalone
    /// exports, which have no folders.
    FolderAndExports,
    /// In the lake's folder names only.
    Folder,
}

/// How a read selects a column into an `Event`, and the name decoding finds it under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// Not read into events (still in the `events` view for SQL).
    Never,
    /// As stored, under its own name.
    AsStored,
    /// As microseconds since the epoch (`epoch_us`), under this name, as `Event` holds times.
    Micros(&'static str),
    /// As two lists, the keys and the values, under these names: Arrow then needs no
    /// conversion of DuckDB's nested struct type.
    KeysAndValues(&'static str, &'static str),
}

/// How the writer stores a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    /// Statistics, no dictionary.
    Plain,
    /// Dictionary-encoded: few distinct values, often filtered on.
    Dictionary,
    /// No statistics: unique or long values (ids, payloads, JSON) that no filter prunes on,
    /// whose statistics cost capture time for nothing.
    NoStatistics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) ty: Ty,
    pub(crate) nullable: bool,
    pub(crate) place: Place,
    pub(crate) read: Read,
    /// Read by `Columns::ForSending`. The decoded forms are not: replay sends bytes only, and
    /// skipping them roughly halves what DuckDB must materialise.
    pub(crate) sent: bool,
    pub(crate) store: Store,
}

impl Column {
    const fn new(name: &'static str, ty: Ty, nullable: bool) -> Self {
        Column {
            name,
            ty,
            nullable,
            place: Place::File,
            read: Read::AsStored,
            sent: true,
            store: Store::Plain,
        }
    }

    const fn place(mut self, place: Place) -> Self {
        self.place = place;
        self
    }

    const fn read(mut self, read: Read) -> Self {
        self.read = read;
        self
    }

    const fn not_sent(mut self) -> Self {
        self.sent = false;
        self
    }

    const fn store(mut self, store: Store) -> Self {
        self.store = store;
        self
    }

    fn field(&self) -> Field {
        Field::new(self.name, self.ty.arrow(), self.nullable)
    }

    /// The name a batch holds this column's value under: its own, or its `Read::Micros` one
    /// (headers, read as two lists, are under `HEADER_KEYS` and `HEADER_VALUES`).
    pub(crate) fn read_name(&self) -> &'static str {
        match self.read {
            Read::Micros(name) => name,
            _ => self.name,
        }
    }

    /// The SELECT items that read this column into an `Event` (none for `Read::Never`).
    fn push_select(&self, out: &mut Vec<String>) {
        let n = self.name;
        match self.read {
            Read::Never => {}
            Read::AsStored => out.push(format!("\"{n}\"")),
            Read::Micros(alias) => out.push(format!("epoch_us(\"{n}\") AS \"{alias}\"")),
            Read::KeysAndValues(keys, values) => {
                out.push(format!("list_transform(\"{n}\", h -> h.key) AS \"{keys}\""));
                out.push(format!(
                    "list_transform(\"{n}\", h -> h.value) AS \"{values}\""
                ));
            }
        }
    }
}

/// Read names of the values that are not a column as stored; none may be a column's name, or
/// an ORDER BY on that column would bind to the read value instead.
pub(crate) const HEADER_KEYS: &str = "header_keys";
pub(crate) const HEADER_VALUES: &str = "header_values";
pub(crate) const TIMESTAMP_US: &str = "timestamp_us";
pub(crate) const CAPTURED_AT_US: &str = "captured_at_us";

use Place::{Folder, FolderAndExports};
use Store::{Dictionary, NoStatistics};
use Ty::{Blob, Bool, Int32, Int64, Text, Time};

pub(crate) const ID: Column = Column::new("id", Text, false).store(NoStatistics);
pub(crate) const BUS: Column = Column::new("bus", Text, false).store(Dictionary);
pub(crate) const CONNECTION: Column = Column::new("connection", Text, false)
    .place(FolderAndExports)
    .store(Dictionary);
pub(crate) const SOURCE: Column = Column::new("source", Text, false)
    .place(FolderAndExports)
    .store(Dictionary);
pub(crate) const PARTITION: Column = Column::new("partition", Int32, true);
pub(crate) const OFFSET: Column = Column::new("offset", Int64, true);
pub(crate) const KEY: Column = Column::new("key", Blob, true).store(NoStatistics);
pub(crate) const KEY_DECODED: Column = Column::new("key_decoded", Text, true)
    .not_sent()
    .store(NoStatistics);
pub(crate) const HEADERS: Column = Column::new("headers", Ty::Headers, false)
    .read(Read::KeysAndValues(HEADER_KEYS, HEADER_VALUES));
pub(crate) const TIMESTAMP: Column =
    Column::new("timestamp", Time, true).read(Read::Micros(TIMESTAMP_US));
pub(crate) const CAPTURED_AT: Column =
    Column::new("captured_at", Time, false).read(Read::Micros(CAPTURED_AT_US));
pub(crate) const PAYLOAD: Column = Column::new("payload", Blob, false).store(NoStatistics);
pub(crate) const PAYLOAD_TEXT: Column = Column::new("payload_text", Text, true)
    .not_sent()
    .store(NoStatistics);
pub(crate) const SIZE: Column = Column::new("size", Int64, false);
pub(crate) const TRUNCATED: Column = Column::new("truncated", Bool, false);
pub(crate) const SCHEMA: Column = Column::new("schema", Text, true).store(Dictionary);
pub(crate) const ENCODING: Column = Column::new("encoding", Text, false).store(Dictionary);
pub(crate) const DECODED: Column = Column::new("decoded", Text, true)
    .not_sent()
    .store(NoStatistics);
pub(crate) const DECODE_ERROR: Column = Column::new("decode_error", Text, true)
    .not_sent()
    .store(NoStatistics);
pub(crate) const PROPERTIES: Column = Column::new("properties", Text, true);
/// The second number of a two-part position (`Event::sub_offset`: a Redis entry id's sequence).
pub(crate) const SUB_OFFSET: Column = Column::new("sub_offset", Int64, true);
/// The event's day (UTC), the last folder level.
pub(crate) const DATE: Column = Column::new("date", Ty::Date, false)
    .place(Folder)
    .read(Read::Never);

/// Every column, in the order of an exported file; a lake file has the `Place::File` ones in
/// this order.
pub(crate) const COLUMNS: [Column; 22] = [
    ID,
    BUS,
    CONNECTION,
    SOURCE,
    PARTITION,
    OFFSET,
    KEY,
    KEY_DECODED,
    HEADERS,
    TIMESTAMP,
    CAPTURED_AT,
    PAYLOAD,
    PAYLOAD_TEXT,
    SIZE,
    TRUNCATED,
    SCHEMA,
    ENCODING,
    DECODED,
    DECODE_ERROR,
    PROPERTIES,
    SUB_OFFSET,
    DATE,
];

/// Which columns a read fills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Columns {
    All,
    /// Bytes, key, headers and position only: what a bus needs to send the event again.
    ForSending,
}

/// The Arrow schema of a lake file, or with the partition columns, of a standalone export.
pub(crate) fn arrow_schema(with_partition_columns: bool) -> Arc<Schema> {
    let fields: Vec<Field> = COLUMNS
        .iter()
        .filter(|c| match c.place {
            Place::File => true,
            Place::FolderAndExports => with_partition_columns,
            Place::Folder => false,
        })
        .map(Column::field)
        .collect();
    Arc::new(Schema::new(fields))
}

/// The SELECT list that reads these columns of the table for row decoding (`rows`).
pub(crate) fn select_list(which: Columns) -> String {
    select_of(COLUMNS.iter().filter(|c| which == Columns::All || c.sent))
}

/// The SELECT items reading just these columns, named as row decoding looks them up.
pub(crate) fn select_of<'a>(columns: impl IntoIterator<Item = &'a Column>) -> String {
    let mut items = Vec::new();
    for c in columns {
        c.push_select(&mut items);
    }
    items.join(", ")
}

/// A typed, empty `events` relation, for a lake with no files yet. Its columns are in the order
/// `read_parquet` gives a lake's, so `SELECT *` looks the same before and after the first
/// capture: the file columns, then the folder ones by name (DuckDB keeps hive partition
/// values in a sorted map).
pub(crate) fn empty_view() -> String {
    let mut folders: Vec<&Column> = COLUMNS.iter().filter(|c| c.place != Place::File).collect();
    folders.sort_by_key(|c| c.name);
    let items: Vec<String> = COLUMNS
        .iter()
        .filter(|c| c.place == Place::File)
        .chain(folders)
        .map(|c| format!("NULL::{} AS \"{}\"", c.ty.duckdb(), c.name))
        .collect();
    format!("SELECT {} WHERE FALSE", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Lake;
    use crate::query::Query;
    use crate::writer::{FlushPolicy, LakeWriter};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use sluice_model::{Bus, Encoding, Event};

    fn event() -> Event {
        Event {
            id: "kafka:local/orders/0/1".into(),
            bus: Bus::Kafka,
            connection: "local".into(),
            source: "orders".into(),
            partition: Some(0),
            offset: Some(1),
            sub_offset: None,
            key: Some(b"k".to_vec()),
            key_decoded: None,
            headers: vec![sluice_model::Header {
                key: "h".into(),
                value: None,
            }],
            timestamp_us: Some(1_795_168_800_000_000),
            captured_at_us: 1_795_168_800_000_000,
            payload: b"{}".to_vec(),
            size: 2,
            truncated: false,
            schema: None,
            encoding: Encoding::Json,
            decoded: Some("{}".into()),
            payload_text: None,
            decode_error: None,
            properties: None,
        }
    }

    fn schema_of(path: &std::path::Path) -> Arc<Schema> {
        let file = std::fs::File::open(path).unwrap();
        ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .schema()
            .clone()
    }

    /// (name, type, nullable) in order.
    fn shape(schema: &Schema) -> Vec<(String, DataType, bool)> {
        schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().clone(), f.is_nullable()))
            .collect()
    }

    fn table_shape(places: &[Place]) -> Vec<(String, DataType, bool)> {
        COLUMNS
            .iter()
            .filter(|c| places.contains(&c.place))
            .map(|c| (c.name.to_string(), c.ty.arrow(), c.nullable))
            .collect()
    }

    #[test]
    fn written_files_have_exactly_the_table_columns_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let mut w = LakeWriter::new(lake.clone(), FlushPolicy::default());
        w.push(event()).unwrap();
        w.flush().unwrap();
        let files = lake.files();
        assert_eq!(files.len(), 1);
        assert_eq!(shape(&schema_of(&files[0])), table_shape(&[Place::File]));
        // Each column is stored the way its entry says.
        use parquet::file::reader::{FileReader, SerializedFileReader};
        let reader = SerializedFileReader::new(std::fs::File::open(&files[0]).unwrap()).unwrap();
        let group = reader.metadata().row_group(0);
        for c in COLUMNS
            .iter()
            .filter(|c| c.place == Place::File && c.ty != Ty::Headers)
        {
            let chunk = (0..group.num_columns())
                .map(|i| group.column(i))
                .find(|m| m.column_path().string() == c.name)
                .unwrap_or_else(|| panic!("{} not in the file", c.name));
            let (dictionary, statistics) = (
                chunk.dictionary_page_offset().is_some(),
                chunk.statistics().is_some(),
            );
            let want = match c.store {
                Store::Plain => (false, true),
                Store::Dictionary => (true, true),
                Store::NoStatistics => (false, false),
            };
            assert_eq!((dictionary, statistics), want, "{}", c.name);
        }

        let out = dir.path().join("export.parquet");
        let q = Query::open(&lake).unwrap();
        let all = sluice_filter::to_sql("", 0).unwrap();
        assert_eq!(q.export_parquet(&all, &out, &mut |_| {}).unwrap(), 1);
        assert_eq!(
            shape(&schema_of(&out)),
            table_shape(&[Place::File, Place::FolderAndExports])
        );
    }

    /// The layout of every lake written so far. A change here means old lakes no longer read
    /// the way new ones do: add columns at the end of the file columns instead.
    #[test]
    fn files_keep_the_layout_old_lakes_have() {
        let names: Vec<String> = arrow_schema(true)
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(
            names,
            [
                "id",
                "bus",
                "connection",
                "source",
                "partition",
                "offset",
                "key",
                "key_decoded",
                "headers",
                "timestamp",
                "captured_at",
                "payload",
                "payload_text",
                "size",
                "truncated",
                "schema",
                "encoding",
                "decoded",
                "decode_error",
                "properties",
                "sub_offset",
            ]
        );
        let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        let headers = DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(Fields::from(vec![
                Field::new("key", DataType::Utf8, false),
                Field::new("value", DataType::Binary, true),
            ])),
            true,
        )));
        use DataType::{Binary, Boolean, Int32, Int64, Utf8};
        let want: Vec<(&str, DataType, bool)> = vec![
            ("id", Utf8, false),
            ("bus", Utf8, false),
            ("partition", Int32, true),
            ("offset", Int64, true),
            ("key", Binary, true),
            ("key_decoded", Utf8, true),
            ("headers", headers, false),
            ("timestamp", ts.clone(), true),
            ("captured_at", ts, false),
            ("payload", Binary, false),
            ("payload_text", Utf8, true),
            ("size", Int64, false),
            ("truncated", Boolean, false),
            ("schema", Utf8, true),
            ("encoding", Utf8, false),
            ("decoded", Utf8, true),
            ("decode_error", Utf8, true),
            ("properties", Utf8, true),
            ("sub_offset", Int64, true),
        ];
        let want: Vec<(String, DataType, bool)> = want
            .into_iter()
            .map(|(n, t, null)| (n.to_string(), t, null))
            .collect();
        assert_eq!(shape(&arrow_schema(false)), want);
    }

    #[test]
    fn read_names_are_unique_and_never_a_column_name() {
        let mut names: Vec<&str> = Vec::new();
        for c in COLUMNS {
            match c.read {
                Read::Never => {}
                Read::AsStored => names.push(c.name),
                Read::Micros(n) => {
                    assert!(COLUMNS.iter().all(|o| o.name != n), "{n}");
                    names.push(n)
                }
                Read::KeysAndValues(k, v) => {
                    for n in [k, v] {
                        assert!(COLUMNS.iter().all(|o| o.name != n), "{n}");
                        names.push(n);
                    }
                }
            }
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "{names:?}");
    }

    #[test]
    fn the_empty_view_has_the_columns_of_a_lake_view() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::open(dir.path()).unwrap();
        let columns = |lake: &Lake| -> Vec<(String, String)> {
            let conn = duckdb::Connection::open_in_memory().unwrap();
            crate::query::create_view(&conn, lake).unwrap();
            let mut stmt = conn.prepare("DESCRIBE events").unwrap();
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
            rows.map(Result::unwrap).collect()
        };
        let empty = columns(&lake);
        let mut w = LakeWriter::new(lake.clone(), FlushPolicy::default());
        w.push(event()).unwrap();
        w.flush().unwrap();
        assert_eq!(empty, columns(&lake));
    }
}
