"""Schema Registry framing and Avro, end to end: confluent-kafka's own serializers (protobuf,
Avro through fastavro, JSON Schema) register against a registry and frame what they produce;
Sluice fetches each schema once, caches it on disk, decodes to the JSON the independent
libraries print, keeps decoding offline, and re-encodes edits with the same frame. Plain Avro
datums decode with an .avsc file mapped like a protobuf type."""

import base64
import io
import json
import time

import fastavro
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient, header_schema_id_serializer
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from google.protobuf import json_format

from conftest import BROKER, consume, produce
from faultproxy import fault_proxy  # noqa: F401 (a fixture)
from registry import FakeRegistry

PAYMENT = {
    "type": "record",
    "name": "Payment",
    "namespace": "shop.avro",
    "fields": [
        {"name": "id", "type": "string"},
        {"name": "amount", "type": "double"},
        {"name": "count", "type": "long"},
        {"name": "status", "type": {"type": "enum", "name": "PayStatus", "symbols": ["OK", "DECLINED"]}},
        {"name": "note", "type": ["null", "string"], "default": None},
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "tags", "type": {"type": "array", "items": "string"}},
        {"name": "attrs", "type": {"type": "map", "values": "int"}},
        {"name": "raw", "type": "bytes"},
    ],
}
THING = {"title": "Thing", "type": "object", "properties": {"name": {"type": "string"}, "n": {"type": "integer"}}}
SECRET = "sr-s3cret-pw"


def avro_json(schema, record):
    """The Avro JSON encoding of a record, as fastavro writes it."""
    out = io.StringIO()
    fastavro.json_writer(out, fastavro.parse_schema(schema), [record])
    return json.loads(out.getvalue())


def payment(i, **kw):
    p = {
        "id": f"p-{i}",
        "amount": 10.5 * i,
        "count": 2**40 + i,
        "status": "DECLINED" if i % 2 else "OK",
        "note": None if i % 3 else f"note {i}",
        "at": 1_700_000_000_000 + i,
        "tags": ["a", f"t{i}"],
        "attrs": {"k": i},
        "raw": bytes([0, 200, i]),
    }
    p.update(kw)
    return p


@pytest.fixture
def registry():
    r = FakeRegistry(user="sr", password=SECRET)
    yield r
    r.stop()


def client(reg):
    return SchemaRegistryClient({"url": reg.url, "basic.auth.user.info": f"sr:{SECRET}"})


def test_registry_framed_protobuf_avro_and_json_decode_like_their_libraries(sluice, topic, pb, registry, tmp_path):
    t = topic("registry", partitions=1)
    sluice("connection", "add", "kafka", "local", "--brokers", BROKER, "--replace",
           "--registry", registry.url, "--registry-user", "sr", env={"SLUICE_REGISTRY_PASSWORD": SECRET})
    sr = client(registry)
    ctx = SerializationContext(t, MessageField.VALUE)
    key_ctx = SerializationContext(t, MessageField.KEY)
    order_ser = ProtobufSerializer(pb.order.Order, sr, {"use.deprecated.format": False})
    refund_ser = ProtobufSerializer(pb.order.Refund, sr, {"use.deprecated.format": False})
    avro_ser = AvroSerializer(sr, json.dumps(PAYMENT))
    avro_header_ser = AvroSerializer(sr, json.dumps(PAYMENT), conf={"schema.id.serializer": header_schema_id_serializer})
    key_ser = AvroSerializer(sr, json.dumps({"type": "record", "name": "PayKey", "namespace": "shop.avro",
                                             "fields": [{"name": "id", "type": "string"}]}))
    json_ser = JSONSerializer(json.dumps(THING), sr)

    orders = []
    for i in range(3):
        o = pb.order.Order(id=f"o-{i}", amount_cents=1000 + i, status=pb.order.FAILED)
        o.customer.name = "Ada"
        o.items.add(sku="A-1", quantity=i + 1)
        o.created_at.FromSeconds(1_700_000_000 + i)
        orders.append(o)
    refund = pb.order.Refund(reason="damaged", amount_cents=250)
    records = [{"key": f"order-{i}".encode(), "value": order_ser(o, ctx)} for i, o in enumerate(orders)]
    records.append({"key": b"refund", "value": refund_ser(refund, ctx)})
    for i in range(4):
        records.append({"key": key_ser({"id": f"p-{i}"}, key_ctx), "value": avro_ser(payment(i), ctx)})
    # Schema id in a header (a GUID, Confluent's newer format): the payload is the bare datum.
    hdr = []
    hctx = SerializationContext(t, MessageField.VALUE, hdr)
    body = avro_header_ser(payment(9), hctx)
    records.append({"key": b"header", "value": body, "headers": hdr})
    records.append({"key": b"json", "value": json_ser({"name": "widget", "n": 3}, ctx)})
    records.append({"key": b"bad", "value": b"\x00\x00\x00\x03\xe7garbage"})  # schema id 999
    produce(t, records)

    out = sluice.run("connection", "test", "local")
    assert "schema registry" in out.stdout and "subject(s)" in out.stdout, out.stdout
    sluice("capture", "local", t, "--stop-at-end")
    events = sluice.jsonl("search", f"source = {t}", "--format", "jsonl", "--limit", "100")
    by_key = {}
    for e in events:
        by_key[json.dumps(e["key_decoded"]) if e.get("key_decoded") else e.get("key_text")] = e
    assert len(events) == len(records), "the bad frame is captured too"

    for i, o in enumerate(orders):
        e = by_key[f"order-{i}"]
        assert (e["encoding"], e["schema"]) == ("protobuf", "shop.v1.Order"), e
        assert e["decoded"] == json_format.MessageToDict(o), e["decoded"]
    e = by_key["refund"]
    assert e["schema"] == "shop.v1.Refund", "message-index path [1] names the second message"
    assert e["decoded"] == json_format.MessageToDict(refund)

    for i in range(4):
        e = by_key[json.dumps({"id": f"p-{i}"})]
        assert (e["encoding"], e["schema"]) == ("avro", "shop.avro.Payment"), e
        assert e["decoded"] == avro_json(PAYMENT, payment(i)), (e["decoded"], avro_json(PAYMENT, payment(i)))
    e = by_key["header"]
    assert e["decoded"] == avro_json(PAYMENT, payment(9)), "schema GUID from the __value_schema_id header"
    e = by_key["json"]
    assert (e["encoding"], e["schema"], e["decoded"]) == ("json", "Thing", {"name": "widget", "n": 3})
    bad = by_key["bad"]
    assert "schema id 999" in bad["decode_error"] and "not found" in bad["decode_error"], bad

    # Searchable by decoded fields like any other event (Avro unions keep their branch name).
    keys = lambda f: sorted(e["key_decoded"]["id"] if e.get("key_decoded") else e["key_text"]
                            for e in sluice.jsonl("search", f, "--format", "jsonl"))
    assert keys(f'source = {t} and status = "DECLINED"') == ["header", "p-1", "p-3"]
    assert keys(f'source = {t} and note.string = "note 3"') == ["p-3"]
    assert keys(f"source = {t} and schema = shop.v1.Refund") == ["refund"]

    # The password never shows, and never reaches the lake.
    for out in (sluice.run("connection", "list").stdout, sluice.run("connection", "test", "local").stdout):
        assert SECRET not in out
    for f in sluice.lake.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f

    # Offline: schemas come from the disk cache, so re-decoding still works.
    fetched = len(registry.requests)
    registry.stop()
    sluice("schema", "redecode", "local", t)
    again = {e["id"]: e for e in sluice.jsonl("search", f"source = {t}", "--format", "jsonl", "--limit", "100")}
    for e in events:
        assert again[e["id"]]["decoded"] == e["decoded"], e["id"]
    assert len(registry.requests) == fetched


def test_edits_of_framed_events_keep_schema_and_frame(sluice, topic, registry, tmp_path):
    src, dst = topic("reg-src", partitions=1), topic("reg-dst", partitions=1)
    sluice("connection", "add", "kafka", "local", "--brokers", BROKER, "--replace",
           "--registry", registry.url, "--registry-user", "sr", env={"SLUICE_REGISTRY_PASSWORD": SECRET})
    sr = client(registry)
    ser = AvroSerializer(sr, json.dumps(PAYMENT))
    values = [ser(payment(i), SerializationContext(src, MessageField.VALUE)) for i in range(2)]
    produce(src, [{"key": f"k{i}".encode(), "value": v} for i, v in enumerate(values)])
    sluice("capture", "local", src, "--stop-at-end")
    events = sluice.jsonl("search", f"source = {src}", "--format", "jsonl")
    edits = []
    for e in events:
        d = dict(e["decoded"])
        if e["key_text"] == "k1":
            d["amount"] = 999.25
            d["note"] = {"string": "edited"}
        edits.append({"id": e["id"], "decoded": d})
    f = tmp_path / "edits.jsonl"
    f.write_text("\n".join(json.dumps(x) for x in edits))
    sluice("replay", f"source = {src}", "--to", f"local:{dst}", "--edit", f)
    got = {m.key(): m.value() for m in consume(dst, partitions=1, expect=2)}
    assert got[b"k0"] == values[0], "an unchanged edit sends the original bytes"
    assert got[b"k1"][:5] == values[1][:5], "same magic byte and schema id"
    de = AvroDeserializer(sr)
    back = de(got[b"k1"], SerializationContext(dst, MessageField.VALUE))
    assert back["amount"] == 999.25 and back["note"] == "edited" and back["id"] == "p-1"

    bad = [{"id": edits[1]["id"], "decoded": dict(edits[1]["decoded"], status="LOST")}]
    f.write_text(json.dumps(bad))
    r = sluice.run("replay", f"source = {src}", "--to", f"local:{dst}", "--edit", f, check=False)
    assert r.returncode != 0 and "one of OK, DECLINED" in r.stderr, r.stderr


def test_avsc_files_map_like_protobuf_types(sluice, topic, tmp_path):
    t = topic("avsc", partitions=1)
    common = tmp_path / "schemas" / "common.avsc"
    common.parent.mkdir()
    common.write_text(json.dumps({"type": "record", "name": "Money", "namespace": "shop.common",
                                  "fields": [{"name": "cents", "type": "long"}, {"name": "currency", "type": "string"}]}))
    invoice = {"type": "record", "name": "Invoice", "namespace": "shop.avro",
               "fields": [{"name": "id", "type": "string"}, {"name": "total", "type": "shop.common.Money"},
                          {"name": "lines", "type": {"type": "array", "items": "shop.common.Money"}}]}
    # Named after something that sorts first, so the folder's files must resolve out of order.
    (tmp_path / "schemas" / "a-invoice.avsc").write_text(json.dumps(invoice, indent=2))
    out = sluice("schema", "add", tmp_path / "schemas")
    listed = sluice("schema", "list")
    assert "shop.avro.Invoice" in listed and "shop.common.Money" in listed, (out, listed)

    broken = tmp_path / "broken.avsc"
    broken.write_text('{\n  "type": "record",\n  "name": "X",\n  "fields": [oops]\n}\n')
    r = sluice.run("schema", "add", broken, check=False)
    assert f"{broken}:4:" in r.stderr, r.stderr

    named = {}
    fastavro.parse_schema(json.loads(common.read_text()), named_schemas=named)
    schema = fastavro.parse_schema(invoice, named_schemas=named)
    docs = [{"id": f"i-{i}", "total": {"cents": 100 * i, "currency": "EUR"},
             "lines": [{"cents": i, "currency": "EUR"}] * i} for i in range(3)]
    recs = []
    for d in docs:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema, d)
        recs.append({"key": d["id"].encode(), "value": buf.getvalue()})
    produce(t, recs)
    sluice("capture", "local", t, "--stop-at-end")
    assert [e["encoding"] for e in sluice.jsonl("search", f"source = {t}", "--format", "jsonl")] != ["avro"] * 3
    sluice("schema", "map", "local", t, "Invoice")  # a unique suffix names the record; re-decodes
    got = {e["key_text"]: e for e in sluice.jsonl("search", f"source = {t}", "--format", "jsonl")}
    for d in docs:
        e = got[d["id"]]
        assert (e["encoding"], e["schema"]) == ("avro", "shop.avro.Invoice")
        out = io.StringIO()
        fastavro.json_writer(out, schema, [d])
        assert e["decoded"] == json.loads(out.getvalue())
    assert sorted(e["key_text"] for e in sluice.jsonl("search", f"source = {t} and total.cents >= 100", "--format", "jsonl")) == ["i-1", "i-2"]


def test_a_registry_that_goes_silent_or_revokes_the_login_fails_events_not_the_capture(sluice, topic, pb, registry, fault_proxy):
    """Each event whose schema cannot be fetched keeps its bytes and says why, within the
    registry's 10 s timeout; the capture goes on and ends with every event in the lake."""
    port = int(registry.url.rsplit(":", 1)[1])
    proxy = fault_proxy(("127.0.0.1", port))
    sluice("connection", "add", "kafka", "local", "--brokers", BROKER, "--replace",
           "--registry", f"http://{proxy.addr}", "--registry-user", "sr", env={"SLUICE_REGISTRY_PASSWORD": SECRET})
    ser = ProtobufSerializer(pb.order.Order, client(registry), {"use.deprecated.format": False})

    def framed(t, n):
        ctx = SerializationContext(t, MessageField.VALUE)
        produce(t, [{"key": f"k{i}".encode(), "value": ser(pb.order.Order(id=f"o-{i}"), ctx)} for i in range(n)])

    silent, revoked = topic("registry-silent", partitions=1), topic("registry-revoked", partitions=1)
    framed(silent, 5)
    framed(revoked, 3)
    proxy.set("stall")
    t0 = time.time()
    r = sluice.run("capture", "local", silent, "--stop-at-end", "--json")
    took = time.time() - t0
    out = json.loads(r.stdout)
    assert (out["captured"], out["decode_errors"]) == (5, 5), r.stdout + r.stderr
    assert took < 40, f"the capture took {took:.0f} s against a silent registry"
    rows = [json.loads(line) for line in sluice("search", f"source = {silent}", "--format", "jsonl").splitlines()]
    assert len(rows) == 5 and all(proxy.addr in row["decode_error"] for row in rows), rows[0]
    assert SECRET not in r.stdout + r.stderr + json.dumps(rows)

    # The registry now refuses the login (a revoked password): a clear error, nothing hangs.
    proxy.set("pass")
    registry.auth = "Basic " + base64.b64encode(b"sr:rotated").decode()
    r = sluice.run("capture", "local", revoked, "--stop-at-end", "--json")
    out = json.loads(r.stdout)
    assert (out["captured"], out["decode_errors"]) == (3, 3), r.stdout + r.stderr
    rows = [json.loads(line) for line in sluice("search", f"source = {revoked}", "--format", "jsonl").splitlines()]
    assert all("401" in row["decode_error"] or "credentials" in row["decode_error"] for row in rows), rows[0]
    assert SECRET not in r.stdout + r.stderr + json.dumps(rows)
