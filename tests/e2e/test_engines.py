"""Other engines read the lake as Sluice writes it: DuckDB's Python package and Spark (pyspark,
local mode) find the same events as `sluice search`, with the same counts, ids, positions, keys,
headers, times and decoded fields, and the duplicate-skipping queries of docs/engines.md give
the original count over a lake that holds a file twice.

The SQL and Python the engines run here are the blocks of docs/engines.md marked
`<!-- tested: NAME -->`, with `/path/to/lake` replaced by this test's lake, so the documented
snippets are the ones that work. The Trino and Athena DDL has no server here; its Hive form is
run by Spark with Hive support (an embedded Derby metastore), which checks its column names,
types and partition columns against real lake files.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import BROKER, ROOT, Sluice, create_topic, produce

DOC = ROOT / "docs" / "engines.md"
N = 300  # protobuf orders, over 3 partitions and two days (UTC)
M = 20  # JSON events on a topic whose name is all digits
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
START = datetime(2026, 11, 20, 23, 58, tzinfo=timezone.utc)  # midnight falls at i = 240


def snippet(name):
    """The code block of docs/engines.md that follows `<!-- tested: NAME -->`."""
    m = re.search(r"<!-- tested: " + re.escape(name) + r" -->\s*```\w*\n(.*?)```", DOC.read_text(), re.S)
    assert m, f"docs/engines.md has no block marked tested: {name}"
    return m.group(1)


def ms(i):
    return int((START - EPOCH).total_seconds() * 1000) + i * 500


def order_records(pb):
    recs = []
    for i in range(N):
        o = pb.order.Order(
            id=f"o-{i}",
            customer=pb.common.Customer(id=42 if i % 10 == 0 else 1000 + i, name="Ada"),
            amount_cents=1000 + i,
            status=pb.order.FAILED if i % 7 == 0 else pb.order.PAID,
            items=[pb.common.Item(sku="A-1" if i % 2 == 0 else "B-2", quantity=i % 4 + 1)],
        )
        o.created_at.FromMilliseconds(ms(i))
        if i % 5 == 0:
            o.refund.reason = "late delivery"
        value = o.SerializeToString()
        if i % 50 == 7:
            value = b"\x0a\xff"  # a length past the end: a decode error, kept as bytes
        r = {"value": value, "partition": i % 3, "timestamp": ms(i)}
        if i % 4:
            r["key"] = b"\xff\x00k" if i % 25 == 1 else f"k{i}".encode()
        if i % 3 == 0:
            r["headers"] = [("trace-id", f"t{i}".encode()), ("bin", bytes([0xFF, 0x00, i % 256])),
                            ("trace-id", b"again")]
        elif i % 11 == 0:
            r["headers"] = [("empty", None)]
        recs.append(r)
    return recs


@pytest.fixture(scope="module")
def lake(tmp_path_factory, pb):
    """A lake with both topics captured, and `sluice search`'s view of it (the reference)."""
    s = Sluice(tmp_path_factory.mktemp("engines"))
    s("connection", "add", "kafka", "local", "--brokers", BROKER)
    orders = create_topic("engines")
    numeric = "1" + str(int(datetime.now().timestamp() * 1e6))[-8:]  # both engines would guess a number
    subprocess.run([str(ROOT / "scripts" / "brokers.sh"), "topic", numeric, "1"], check=True)
    recs = order_records(pb)
    s("schema", "add", ROOT / "protos")
    s("schema", "map", "local", orders, "shop.v1.Order")
    # Two captures, so the first day's folder holds two files (one per flush), as a lake does.
    for part in (recs[: N // 2], recs[N // 2:]):
        produce(orders, part)
        summary = json.loads(s("capture", "local", orders, "--stop-at-end", "--json"))
        assert (summary["captured"], summary["stopped_by"]) == (len(part), "end"), summary
    produce(numeric, [{"value": json.dumps({"n": i, "kind": "json"}).encode(), "timestamp": ms(i)}
                      for i in range(M)])
    summary = json.loads(s("capture", "local", numeric, "--stop-at-end", "--json"))
    assert (summary["captured"], summary["stopped_by"]) == (M, "end"), summary
    events = s.jsonl("search", "", "--format", "jsonl", "--limit", "10000")
    count = int(s("search", "", "--count").strip())
    failed = int(s("search", "status = FAILED", "--count").strip())
    assert count == len(events) == N + M
    assert failed == len([i for i in range(N) if i % 7 == 0 and i % 50 != 7])
    assert len({e["id"] for e in events}) == count
    return {"sluice": s, "root": s.lake, "orders": orders, "numeric": numeric, "recs": recs,
            "events": {e["id"]: e for e in events}, "count": count, "failed": failed}


def format_us(v):
    return (EPOCH + timedelta(microseconds=v)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def b64(b):
    return None if b is None else base64.b64encode(bytes(b)).decode()


def utf8(b):
    try:
        return bytes(b).decode()
    except UnicodeDecodeError:
        return None


def grouped(headers):
    """Headers as `sluice search` prints them (render.rs `headers_json`)."""
    out = {}
    for k, v in headers:
        v = None if v is None else (utf8(v) if utf8(v) is not None else {"base64": b64(v)})
        out.setdefault(k, []).append(v)
    return {k: vs[0] if len(vs) == 1 else vs for k, vs in out.items()}


def as_search(r):
    """An engine's row (plain Python values) in `sluice search --format jsonl`'s shape."""
    headers = [(h["key"], None if h["value"] is None else bytes(h["value"])) for h in r["headers"]]
    return {
        "id": r["id"], "bus": r["bus"], "connection": r["connection"], "source": r["source"],
        "partition": r["partition"], "offset": r["offset"],
        "timestamp": None if r["timestamp_us"] is None else format_us(r["timestamp_us"]),
        "timestamp_us": r["timestamp_us"], "captured_at": format_us(r["captured_at_us"]),
        "key": b64(r["key"]), "key_text": None if r["key"] is None else utf8(r["key"]),
        "key_decoded": None if r["key_decoded"] is None else json.loads(r["key_decoded"]),
        "headers": grouped(headers), "schema": r["schema"], "encoding": r["encoding"],
        "decoded": None if r["decoded"] is None else json.loads(r["decoded"]),
        "decode_error": r["decode_error"], "payload": b64(r["payload"]),
        "payload_text": utf8(r["payload"]), "size": r["size"], "truncated": r["truncated"],
        "properties": None if r["properties"] is None else json.loads(r["properties"]),
    }


# What each engine selects: every column, times as microseconds so no time zone can shift them.
COLUMNS = ("id, bus, connection, source, {q}partition{q}, {q}offset{q}, key, key_decoded, headers, "
           "{us}({q}timestamp{q}) AS timestamp_us, {us}(captured_at) AS captured_at_us, payload, size, "
           "truncated, {q}schema{q}, encoding, decoded, decode_error, properties, "
           "CAST({q}date{q} AS {text}) AS day")


def check_same_as_search(lake, rows, failed, trace_t3):
    """rows: dicts of the engine's values; failed: its count of status FAILED; trace_t3: the
    `trace-id` header values it found on o-3."""
    events = lake["events"]
    assert len(rows) == lake["count"], "the engine counts what sluice search counts"
    got = {r["id"]: r for r in rows}
    assert set(got) == set(events), "the same ids"
    for id_, r in got.items():
        e = dict(events[id_])
        e.pop("sub_offset", None)
        assert as_search(r) == e, id_
        day = (EPOCH + timedelta(microseconds=r["timestamp_us"])).date()
        assert r["day"] == day.isoformat(), "date= is the event's UTC day"
    # Against the producer, not only against Sluice: keys, headers in order, duplicates kept.
    by_offset = {(r["partition"], r["offset"]): r for r in rows if r["source"] == lake["orders"]}
    seen = {p: 0 for p in range(3)}
    for i, rec in enumerate(lake["recs"]):
        p = rec["partition"]
        r = by_offset[(p, seen[p])]
        seen[p] += 1
        assert r["payload"] == rec["value"] and r["timestamp_us"] == rec["timestamp"] * 1000
        assert (None if r["key"] is None else bytes(r["key"])) == rec.get("key")
        assert [(h["key"], None if h["value"] is None else bytes(h["value"])) for h in r["headers"]] \
            == rec.get("headers", [])
        if i % 50 != 7:
            assert json.loads(r["decoded"])["id"] == f"o-{i}"
    assert {r["source"] for r in rows} == {lake["orders"], lake["numeric"]}, "a numeric name stays text"
    assert {r["day"] for r in rows if r["source"] == lake["orders"]} == {"2026-11-20", "2026-11-21"}
    assert failed == lake["failed"]
    assert trace_t3 == ["t3", "again"]


def duplicate_a_file(lake, tmp_path):
    """A copy of the lake in which one file of the orders is there twice (as two captures of one
    topic running at once can leave it): (copy's root, the rows that file holds)."""
    root = tmp_path / "dup-lake"
    shutil.copytree(lake["root"], root)
    files = sorted((root / "connection=local" / f"source={lake['orders']}").rglob("part-*.parquet"))
    f = files[0]
    max_, min_, _ = f.stem.removeprefix("part-").split("-")
    shutil.copy(f, f.with_name(f"part-{max_}-{min_}-c0ffee00.parquet"))
    duckdb = pytest.importorskip("duckdb")
    dup = duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{f}')").fetchall()[0][0]
    assert dup > 0
    return root, dup


# ---------------------------------------------------------------- DuckDB


def duckdb_connection(root):
    import duckdb

    con = duckdb.connect()
    con.execute(snippet("duckdb-view").replace("/path/to/lake", str(root)))
    con.execute(snippet("duckdb-unique"))
    return con


def duckdb_rows(con, relation):
    cols = COLUMNS.format(us="epoch_us", q='"', text="VARCHAR")
    cur = con.execute(f"SELECT {cols} FROM {relation}")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def test_duckdb_reads_what_search_finds(lake):
    pytest.importorskip("duckdb")
    con = duckdb_connection(lake["root"])
    rows = duckdb_rows(con, "events")
    failed = con.execute(snippet("duckdb-failed")).fetchall()[0][0]
    trace = con.execute(snippet("duckdb-header")).fetchall()[0][1]
    check_same_as_search(lake, rows, failed, trace)
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE events)").fetchall())
    assert (types["connection"], types["source"], types["date"]) == ("VARCHAR", "VARCHAR", "DATE")
    assert types["timestamp"] == "TIMESTAMP WITH TIME ZONE" and types["headers"] == "STRUCT(\"key\" VARCHAR, \"value\" BLOB)[]"


def test_duckdb_skips_duplicate_ids(lake, tmp_path):
    pytest.importorskip("duckdb")
    root, dup = duplicate_a_file(lake, tmp_path)
    con = duckdb_connection(root)
    assert con.execute("SELECT count(*) FROM events").fetchall()[0][0] == lake["count"] + dup
    assert con.execute("SELECT count(*), count(DISTINCT id) FROM events_unique").fetchall()[0] == (lake["count"],) * 2
    check_same_as_search(lake, duckdb_rows(con, "events_unique"), lake["failed"], ["t3", "again"])
    pruned = snippet("duckdb-pruned").replace("source = 'orders'", f"source = '{lake['orders']}'")
    assert sorted(con.execute(pruned).fetchall(), key=repr) == by_day_and_status(lake)
    distinct_on = snippet("duckdb-distinct-on").strip().rstrip(";")
    assert con.execute(f"SELECT count(*) FROM ({distinct_on})").fetchall()[0][0] == lake["count"]
    # docs/engines.md says Sluice itself counts such a file twice: change both together.
    out = lake["sluice"]("--lake", root, "search", "", "--count").strip()
    assert int(out) == lake["count"] + dup


def by_day_and_status(lake):
    """(date, status, count) of the orders, from `sluice search`."""
    out = {}
    for e in lake["events"].values():
        if e["source"] == lake["orders"]:
            k = ((EPOCH + timedelta(microseconds=e["timestamp_us"])).date(), (e["decoded"] or {}).get("status"))
            out[k] = out.get(k, 0) + 1
    return sorted(((d, st, n) for (d, st), n in out.items()), key=repr)


def lake_sql(root, folder):
    """docs/engines.md's `lake.sql`: its two views over the lake at `root`."""
    path = folder / "lake.sql"
    path.write_text(snippet("duckdb-view").replace("/path/to/lake", str(root)) + snippet("duckdb-unique"))
    return path


def ids_and_decoded(lake, rows, source):
    """rows: (id, decoded JSON text) pairs of `source`; they must be its events in search."""
    want = {i: e["decoded"] for i, e in lake["events"].items() if e["source"] == source}
    got = {i: None if d is None else json.loads(d) for i, d in rows}
    assert len(rows) == len(want) and got == want


def test_the_documented_duckdb_python_and_cli_lines(lake, tmp_path):
    pytest.importorskip("duckdb")
    root, _ = duplicate_a_file(lake, tmp_path)
    path = lake_sql(root, tmp_path)
    scope = {}
    exec(snippet("duckdb-python").replace('"lake.sql"', repr(str(path))).replace("'orders'", f"'{lake['orders']}'"),
         scope)
    ids_and_decoded(lake, scope["rows"], lake["orders"])
    cli = shutil.which("duckdb") or shutil.which("duckdb", path=str(Path(sys.executable).parent))
    if cli is None:
        pytest.skip("no duckdb CLI (pip install duckdb-cli)")
    line = snippet("duckdb-cli").strip().replace("'orders'", f"'{lake['orders']}'")
    env = dict(os.environ, PATH=f"{Path(cli).parent}:{os.environ['PATH']}")
    out = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    ids_and_decoded(lake, [(r["id"], r["decoded"]) for r in json.loads(out.stdout)], lake["orders"])


# ---------------------------------------------------------------- Spark


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    home = tmp_path_factory.mktemp("spark")
    session = (
        SparkSession.builder.master("local[1]")
        .appName("sluice-engines")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(home / "warehouse"))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={home}")
        .config("javax.jdo.option.ConnectionURL", f"jdbc:derby:;databaseName={home}/metastore;create=true")
        .enableHiveSupport()
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def spark_rows(spark, relation):
    out = []
    cols = COLUMNS.format(us="unix_micros", q="`", text="STRING")
    for row in spark.sql(f"SELECT {cols} FROM {relation}").collect():
        out.append(row.asDict(recursive=True))
    return out


def spark_events(spark, root):
    code = snippet("spark-read").replace("/path/to/lake", str(root))
    scope = {"spark": spark}
    exec(code, scope)
    spark.sql(snippet("spark-unique"))
    return scope["events"]


def test_spark_reads_what_search_finds(lake, spark):
    spark_events(spark, lake["root"])
    rows = spark_rows(spark, "events")
    failed = spark.sql(snippet("spark-failed")).collect()[0][0]
    trace = spark.sql(snippet("spark-header")).collect()[0]["trace_ids"]
    check_same_as_search(lake, rows, failed, list(trace))
    types = {f.name: f.dataType.simpleString() for f in spark.table("events").schema.fields}
    assert (types["connection"], types["source"], types["date"]) == ("string", "string", "date")
    assert types["timestamp"] == "timestamp" and types["headers"] == "array<struct<key:string,value:binary>>"
    # The README's one-liner, Spark's own discovery of everything: the same rows and types here
    # (with both topics in one folder level, `source` is guessed as text).
    guessed = spark.read.parquet(str(lake["root"]))
    assert guessed.count() == lake["count"]
    assert {f.name: f.dataType.simpleString() for f in guessed.schema.fields} == types


def test_spark_skips_duplicate_ids(lake, spark, tmp_path):
    root, dup = duplicate_a_file(lake, tmp_path)
    events = spark_events(spark, root)
    assert events.count() == lake["count"] + dup
    assert spark.sql("SELECT count(*), count(DISTINCT id) FROM events_unique").collect()[0][:] == (lake["count"],) * 2
    check_same_as_search(lake, spark_rows(spark, "events_unique"), lake["failed"], ["t3", "again"])
    scope = {"events": events}
    exec(snippet("spark-drop-duplicates"), scope)
    assert scope["unique"].count() == lake["count"]


def test_the_athena_hive_ddl_reads_the_lake(lake, spark, tmp_path):
    """docs/engines.md's Athena DDL is Hive DDL, which Spark with Hive support also runs: the
    table it declares reads the lake files by name, with the partitions from the folders."""
    root, dup = duplicate_a_file(lake, tmp_path)
    ddl = snippet("athena-ddl").replace("s3://my-bucket/sluice/lake/", f"file://{root}/")
    spark.sql("DROP TABLE IF EXISTS sluice_events")
    for statement in [s for s in ddl.split(";") if s.strip()]:
        spark.sql(statement)
    assert spark.table("sluice_events").count() == lake["count"] + dup
    unique = snippet("athena-unique").strip().rstrip(";")
    assert spark.sql(f"SELECT count(*) FROM ({unique})").collect()[0][0] == lake["count"]
    spark.sql(f"SELECT * FROM ({unique})").drop("n").createOrReplaceTempView("athena_unique")
    check_same_as_search(lake, spark_rows(spark, "athena_unique"), lake["failed"], ["t3", "again"])
    spark.sql("DROP TABLE sluice_events")


def test_one_source_keeps_a_numeric_name_as_text(lake, spark):
    """Read alone, the all-digits topic's folder would make `source` a number in both engines
    (guessing, Spark also reads a name like 0042 as 42)."""
    pytest.importorskip("duckdb")
    n = lake["numeric"]
    glob = f"{lake['root']}/connection=local/source={n}/**/*.parquet"
    view = snippet("duckdb-view").replace("/path/to/lake/**/*.parquet", glob)
    con = duckdb_connection(lake["root"])
    con.execute(view.replace("CREATE VIEW events", "CREATE VIEW one"))
    assert con.execute("SELECT DISTINCT source FROM one").fetchall() == [(n,)]
    scope = {"spark": spark}
    exec(snippet("spark-read").replace("/path/to/lake", str(lake["root"])), scope)
    exec(snippet("spark-one-source").replace("/path/to/lake", str(lake["root"])).replace("source=orders", f"source={n}"),
         scope)
    got = scope["orders"].select("source", "connection").distinct().collect()
    assert [tuple(r) for r in got] == [(n, "local")]
    assert scope["orders"].count() == M


def test_engines_read_a_compacted_lake(lake, spark, tmp_path):
    """`sluice lake compact` rewrites files; what it writes reads the same in both engines."""
    pytest.importorskip("duckdb")
    root = tmp_path / "compacted"
    shutil.copytree(lake["root"], root)
    before = sorted(root.rglob("part-*.parquet"))
    r = lake["sluice"].run("--lake", root, "lake", "compact", check=False)
    if r.returncode != 0 and "unrecognized subcommand" in r.stderr:
        pytest.skip("this sluice has no `lake compact`")
    assert r.returncode == 0, r.stderr
    assert len(sorted(root.rglob("part-*.parquet"))) < len(before), r.stdout
    con = duckdb_connection(root)
    check_same_as_search(lake, duckdb_rows(con, "events"), lake["failed"], ["t3", "again"])
    spark_events(spark, root)
    check_same_as_search(lake, spark_rows(spark, "events"), lake["failed"], ["t3", "again"])
