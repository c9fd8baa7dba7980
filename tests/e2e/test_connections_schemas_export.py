"""Connections and secrets, topic browsing, schema formats, the proto3 JSON mapping against
Python's protobuf runtime, and exports."""

import base64
import json
import os
import stat
import subprocess

from google.protobuf import json_format

from conftest import BROKER, ROOT, Sluice, consume, produce


def test_connection_lifecycle_keeps_secrets_secret(tmp_path):
    s = Sluice(tmp_path)
    secret = "s3cr3t-Pa55word"
    out = s.run("connection", "add", "kafka", "prod", "--brokers", "127.0.0.1:1", "--sasl-mechanism", "SCRAM-SHA-512",
                "--username", "ada", "--password-stdin", input=secret + "\n")
    assert "added connection prod" in out.stdout
    assert "keyring" in out.stderr and secret not in out.stdout + out.stderr
    cfg = tmp_path / "config" / "config.toml"
    assert stat.S_IMODE(os.stat(cfg).st_mode) == 0o600
    listing = s("connection", "list", "--format", "json")
    assert secret not in listing and json.loads(listing)[0]["auth"] == "SASL SCRAM-SHA-512 as ada"
    r = s.run("connection", "test", "prod", check=False, env={"SLUICE_LOG": "trace"})
    assert r.returncode == 1 and secret not in r.stdout + r.stderr
    r = s.run("connection", "add", "kafka", "prod", "--brokers", BROKER, check=False)
    assert r.returncode == 1 and "already exists" in r.stderr
    r = s.run("connection", "add", "kafka", "bad name", "--brokers", BROKER, check=False)
    assert r.returncode == 1 and "invalid connection name" in r.stderr
    r = s.run("connection", "add", "kafka", "x", "--brokers", "nohostport", check=False)
    assert r.returncode == 1 and "HOST:PORT" in r.stderr
    s("connection", "add", "kafka", "local", "--brokers", BROKER)
    assert "reachable" in s("connection", "test", "local")
    s("connection", "remove", "prod")
    assert "prod" not in s("connection", "list")
    assert secret not in cfg.read_text()
    r = s.run("connection", "remove", "prod", check=False)
    assert r.returncode == 1 and "unknown connection" in r.stderr


def test_topics_lists_partitions_and_offsets(sluice, topic):
    t = topic("browse", partitions=2)
    produce(t, [{"value": b"a", "partition": 0}, {"value": b"b", "partition": 0}, {"value": b"c", "partition": 1}], one_batch_each=True)
    consume(t, partitions=2, expect=3)
    info = {x["name"]: x for x in json.loads(sluice("topics", "local", "--format", "json"))}
    assert [p["id"] for p in info[t]["partitions"]] == [0, 1]
    assert [p["high"] - p["low"] for p in info[t]["partitions"]] == [2, 1]
    assert t in sluice("topics", "local")


def test_descriptor_sets_and_folders(sluice, tmp_path):
    out = tmp_path / "shop.binpb"
    from grpc_tools import protoc
    import grpc_tools
    wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    assert protoc.main(["protoc", f"-I{ROOT / 'protos'}", f"-I{wkt}", "--include_imports",
                        f"--descriptor_set_out={out}", "shop/v1/order.proto"]) == 0
    added = sluice("schema", "add", out)
    assert "shop.v1.Order" in added and "shop.v1.Customer" in added
    # A set built without --include_imports still resolves Google's well-known types.
    bare = tmp_path / "bare.binpb"
    assert protoc.main(["protoc", f"-I{ROOT / 'tests' / 'protos'}", f"-I{wkt}", f"--descriptor_set_out={bare}",
                        "kinds/v1/kinds.proto"]) == 0
    assert "kinds.v1.Kinds" in sluice("schema", "add", bare)
    listing = json.loads(sluice("schema", "list", "--format", "json"))
    assert {"shop.v1.Order", "kinds.v1.Kinds", "kinds.v1.Inner"} <= set(listing["message_types"])


def kinds_message(pb):
    k = pb.kinds.Kinds(
        f_double=1.5, f_float=-2.25, f_int32=-7, f_int64=-9007199254740993, f_uint32=4000000000,
        f_uint64=18446744073709551615, f_sint32=-3, f_sint64=-4, f_fixed32=5, f_fixed64=6, f_sfixed32=-8,
        f_sfixed64=-9, f_bool=True, f_string="héllo \"quoted\"", f_bytes=b"\x00\xffbytes", f_enum=pb.kinds.GREEN,
        f_message=pb.kinds.Inner(name="in", values=[1, 2]), r_string=["a", "b"],
        r_message=[pb.kinds.Inner(name="x"), pb.kinds.Inner()], r_enum=[pb.kinds.RED, pb.kinds.GREEN],
        o_inner=pb.kinds.Inner(name="chosen"), p_optional=0,
    )
    k.m_int64["big"] = 1 << 40
    k.m_message[3].name = "three"
    k.w_timestamp.FromJsonString("2026-11-20T10:00:00.123Z")
    k.w_duration.FromJsonString("1.5s")
    k.w_any.Pack(pb.kinds.Inner(name="packed"))
    k.w_struct.update({"a": 1, "b": [True, None, "s"], "c": {"d": 2.5}})
    k.w_value.string_value = "v"
    k.w_int64.value = 123
    k.w_string.value = ""
    k.w_bool.value = False
    k.w_mask.paths.extend(["f_string", "f_message.name"])
    k.w_empty.SetInParent()
    return k


def test_proto3_json_matches_the_python_runtime(sluice, topic, pb):
    t = topic("kinds", partitions=1)
    k = kinds_message(pb)
    produce(t, [{"value": k.SerializeToString()}, {"value": pb.kinds.Kinds().SerializeToString()}])
    sluice("schema", "add", ROOT / "tests" / "protos")
    sluice("schema", "map", "local", t, "kinds.v1.Kinds")
    sluice("capture", "local", t, "--stop-at-end")
    got = sluice.jsonl("search", f"source = {t}", "--format", "jsonl")
    by_offset = {e["offset"]: e["decoded"] for e in got}
    expected = json.loads(json_format.MessageToJson(k))
    assert by_offset[0] == expected
    assert by_offset[1] == {}, "default values are omitted"
    # Spot-check the mapping rules themselves, not only agreement.
    d = by_offset[0]
    assert d["fInt64"] == "-9007199254740993" and d["fUint64"] == "18446744073709551615"
    assert base64.b64decode(d["fBytes"]) == b"\x00\xffbytes" and d["fEnum"] == "GREEN"
    assert d["wTimestamp"] == "2026-11-20T10:00:00.123Z" and d["wDuration"] == "1.500s"
    assert d["wAny"]["@type"].endswith("kinds.v1.Inner") and d["wInt64"] == "123"
    assert d["pOptional"] == 0


def test_exports(sluice, topic, tmp_path):
    t = topic("export", partitions=1)
    produce(t, [{"value": b'{"n":%d}' % i, "key": b"k%d" % i} for i in range(5)])
    sluice("capture", "local", t, "--stop-at-end")
    j = tmp_path / "out.jsonl"
    assert "exported 3 events" in sluice("export", "n >= 2", "--format", "jsonl", "-o", j)
    lines = [json.loads(l) for l in j.read_text().splitlines()]
    assert [l["decoded"]["n"] for l in lines] == [2, 3, 4]
    c = tmp_path / "out.csv"
    sluice("export", "", "--format", "csv", "-o", c)
    import csv
    rows = list(csv.DictReader(c.open()))
    assert len(rows) == 5 and rows[0]["key_text"] == "k0" and json.loads(rows[0]["decoded"]) == {"n": 0}
    p = tmp_path / "out.parquet"
    sluice("export", "n < 2", "--format", "parquet", "-o", p)
    data = p.read_bytes()
    assert data[:4] == b"PAR1" and data[-4:] == b"PAR1"
    assert not any(x.name.endswith((".tmp", ".partial")) for x in tmp_path.iterdir())
