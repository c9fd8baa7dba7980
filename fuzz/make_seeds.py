#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/seeds/<target>/ from the project's schemas (protos/,
tests/protos/) and hand-made payloads. Run it again after changing those schemas; it needs
grpcio-tools (protoc) only for the descriptor-set and protobuf seeds."""
import base64, gzip, os, struct, subprocess, sys, tempfile
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent
SEEDS = FUZZ / "seeds"


def put(target, name, data):
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())


def protoc(*args, stdin=None):
    from grpc_tools import protoc as _p  # noqa: F401  (fails early when missing)
    import grpc_tools
    wkt = Path(grpc_tools.__file__).parent / "_proto"
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{wkt}", *args]
    return subprocess.run(cmd, input=stdin, capture_output=True, check=True).stdout


def descriptor_sets():
    with tempfile.TemporaryDirectory() as t:
        for name, inc, files in [
            ("shop", ROOT / "protos", ["shop/v1/order.proto", "shop/v1/common.proto"]),
            ("kinds", ROOT / "tests/protos", ["kinds/v1/kinds.proto"]),
        ]:
            for imports in (True, False):
                out = Path(t) / "set.binpb"
                args = [f"-I{inc}", f"--descriptor_set_out={out}"]
                if imports:
                    args.append("--include_imports")
                protoc(*args, *files)
                put("descriptor_set", f"{name}{'-imports' if imports else ''}.binpb", out.read_bytes())


def proto_sources():
    # protos/ and tests/protos/ are read as seeds where they are (scripts/fuzz.sh).
    put("proto_source", "proto2.proto", 'syntax = "proto2";\npackage p2;\nmessage M { required int32 a = 1 [default = 7]; optional group G = 2 { optional string s = 3; } extensions 100 to 200; }\nextend M { optional bool flag = 100; }\n')
    put("proto_source", "nested.proto", 'syntax = "proto3";\npackage n;\nmessage A { message B { message C { repeated A a = 1; } C c = 1; } B b = 1; map<string, A> m = 2; oneof o { int32 x = 3; string y = 4; } }\nenum E { E0 = 0; E1 = 1; }\n')


# The order of `SchemaSet::message_types()` (sorted full names) picks the type in decode_protobuf.
TYPES = ["kinds.v1.Inner", "kinds.v1.Kinds", "shop.v1.Customer", "shop.v1.Item", "shop.v1.Order", "shop.v1.OrderKey", "shop.v1.Refund"]
TEXT = {
    "kinds.v1.Inner": 'name: "n" values: [1, -2, 3]',
    "kinds.v1.Kinds": 'f_double: 1.5 f_float: -2 f_int32: -7 f_int64: 9007199254740993 f_uint32: 4000000000 '
        'f_uint64: 18446744073709551615 f_sint32: -3 f_sint64: -4 f_fixed32: 5 f_fixed64: 6 f_sfixed32: -8 '
        'f_sfixed64: -9 f_bool: true f_string: "héllo" f_bytes: "\\x00\\xff" f_enum: GREEN f_message { name: "i" values: 1 } '
        'r_string: ["a", "b"] r_message { name: "r" } r_enum: [RED, GREEN] m_int64 { key: "k" value: 1 } '
        'm_message { key: 3 value { name: "v" } } o_text: "o" w_timestamp { seconds: 1700000000 nanos: 5 } '
        'w_duration { seconds: -1 } w_struct { fields { key: "a" value { list_value { values { number_value: 1 } values { null_value: NULL_VALUE } } } } } '
        'w_value { string_value: "s" } w_int64 { value: 5 } w_string { value: "w" } w_bool { value: true } '
        'w_mask { paths: ["a.b", "c"] } w_empty {} p_optional: 0',
    "shop.v1.Customer": 'id: 42 name: "Ada" email: "ada@example.com"',
    "shop.v1.Item": 'sku: "A-1" quantity: 2 unit_price: 9.99',
    "shop.v1.Order": 'id: "o-1" customer { id: 42 name: "Ada" } amount_cents: 1999 status: PAID '
        'created_at { seconds: 1700000000 } items { sku: "A-1" quantity: 1 } refund { reason: "late" amount_cents: 5 }',
    "shop.v1.OrderKey": 'order_id: "o-1"',
    "shop.v1.Refund": 'reason: "damaged" amount_cents: 100',
}


def protobuf_payloads():
    out = {}
    for i, t in enumerate(TYPES):
        inc, f = ("tests/protos", "kinds/v1/kinds.proto") if t.startswith("kinds") else ("protos", "shop/v1/order.proto")
        b = protoc(f"-I{ROOT / inc}", f"--encode={t}", f, stdin=TEXT[t].encode())
        out[t] = b
        put("decode_protobuf", t, bytes([i]) + b)
        put("decode_protobuf", t + ".framed", bytes([i]) + b"\x00\x00\x00\x00\x07\x00" + b)
    return out


def zz(n):
    return (n << 1) ^ (n >> 63)


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def along(n):
    return varint(zz(n) & ((1 << 64) - 1))


def astr(s):
    b = s.encode() if isinstance(s, str) else s
    return along(len(b)) + b


def avro_record(depth):
    """One `fz.N` record (see AVRO_RECORD in fuzz/src/lib.rs), nesting `depth` more in `next`
    and one in `a`."""
    r = astr("s") + along(-5) + struct.pack("<d", 2.5) + along(7) + struct.pack("<f", 1.25)
    r += b"\x01" + astr(b"\x00\x01") + b""  # null is empty
    r += along(1)  # enum B
    if depth:
        r += along(1) + avro_record(0) + along(0)  # array of one N
    else:
        r += along(0)
    r += along(2) + astr("k") + along(1) + astr(b"v") + astr("z") + along(0) + along(0)  # map: {k: bytes, z: null}
    r += b"abc" + astr(b"\x01\x00") + along(1700000000000) + astr("123e4567-e89b-12d3-a456-426614174000")
    r += along(1) + avro_record(depth - 1) if depth else along(0)
    return r


def payloads(protos):
    for d in (0, 1, 3):
        put("decode_avro", f"record-{d}", avro_record(d))
    j = b'{"a": [1, {"b": null}], "s": "\\u00e9", "n": -1.5e300}'
    sniff = {
        "json": j,
        "json-array": b'[true, false, "x", 1]',
        "text": b"payment declined for order 42\n",
        "gzip-json": gzip.compress(j),
        "base64-json": base64.b64encode(j),
        "base64-gzip": base64.b64encode(gzip.compress(j)),
        "msgpack": b"\x82\xa1a\x01\xa1b\x92\xc3\xa1x",
        "cbor": b"\xa2\x61a\x01\x61b\x82\xf5\x61x",
        "snappy-framed": b"\xff\x06\x00\x00sNaPpY\x01\x08\x00\x00\x68\x81\x19\x3ehi!!",
        "registry-avro": b"\x01" + avro_record(1),
        "registry-proto": b"\x02\x00\x0a\x04\x0a\x02hi\x12\x05\x0a\x01k\x12\x00",
        "registry-json": b"\x04" + b'{"a": 1}',
    }
    for name, b in protos.items():
        sniff["raw-" + name] = b
    for name, b in sniff.items():
        put("decode_sniff", name, b)


def filters():
    for i, f in enumerate([
        '"payment declined"', "order.customer.id = 42", 'status in ("FAILED", "RETRY")',
        "amount > 100.5", "exists(refund)", "source = orders and partition = 3",
        'header.trace-id = "x"', "decode_error exists", "after:2026-11-20T10:00:00Z  last:15m",
        "not (a or b) and c", "items[0].sku ~ \"^A-[0-9]+$\"", "event.id = \"kafka:local/orders/0/7\"",
        "timestamp >= \"2026-11-20T10:00:00Z\" before:2026-11-21", "property.routing_key = x or key != 'k'",
        "offset <= 1e3 size < 1024 event.bus = kafka", "((a) (b or not c))",
    ]):
        put("filter", f"f{i:02}", f)


def avro_schemas():
    src = (FUZZ / "src/lib.rs").read_text()
    start = src.index('r#"', src.index("AVRO_RECORD")) + 3
    put("avro_schema", "record.avsc", src[start:src.index('"#', start)])
    put("avro_schema", "primitive.avsc", '"long"')
    put("avro_schema", "union.avsc", '["null", "string", {"type": "array", "items": "int"}]')
    put("avro_schema", "enum.avsc", '{"type": "enum", "name": "E", "symbols": ["A", "B"], "default": "A"}')


if __name__ == "__main__":
    filters()
    avro_schemas()
    proto_sources()
    descriptor_sets()
    payloads(protobuf_payloads())
    print("seeds in", SEEDS)
