"""Synthetic 10M-event Sluice lake: connection=local/source=orders/date=D/part-MAX-MIN-ID.parquet.
80 files x 125k rows, 10k-row row groups, snappy, the file columns of columns.rs in order.
Also writes a dummy hidden sketch side file per data file (random bytes, ~1 MiB, an estimate
of a real sketch for 125k rows: trigram header + 13 block bitmaps + Bloom)."""
import duckdb, os, sys, time, uuid, random

ROOT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/objstore/lake"
N = 10_000_000
FILES = 80
PER = N // FILES
T0 = 1_793_491_200_000_000  # 2026-11-01T00:00:00Z in us
STEP = 69_120  # us between events: 10M events over 8 days
SKETCH_BYTES = 1 << 20

con = duckdb.connect()
con.execute("SET threads=2; SET TimeZone='UTC'")
t = time.time()
rng = random.Random(1)
for f in range(FILES):
    lo, hi = f * PER, (f + 1) * PER
    tmin, tmax = T0 + lo * STEP, T0 + (hi - 1) * STEP
    date = time.strftime("%Y-%m-%d", time.gmtime(tmin / 1e6))
    d = f"{ROOT}/connection=local/source=orders/date={date}"
    os.makedirs(d, exist_ok=True)
    name = f"part-{tmax}-{tmin}-{uuid.UUID(int=rng.getrandbits(128)).hex[:8]}.parquet"
    # decoded ~250 bytes of order JSON; 'rare-marker' in 1 of ~1M rows only.
    sql = f"""
    COPY (
      WITH r AS (SELECT i, hash(i) AS h FROM range({lo}, {hi}) t(i)),
      j AS (SELECT i, h,
        '{{"order_id":"ord-' || lpad(i::VARCHAR, 10, '0') ||
        '","customer":{{"id":' || (h % 100000)::VARCHAR || ',"name":"Customer ' || (h % 100000)::VARCHAR ||
        '","tier":"' || ['gold','silver','bronze','plain'][(h % 4)::INT + 1] ||
        '"}},"items":[{{"sku":"SKU-' || lpad((h % 9973)::VARCHAR, 5, '0') || '","qty":' || (1 + h % 9)::VARCHAR ||
        ',"price":' || ((h % 100000) / 100.0)::VARCHAR || '}}],"total":' || ((h % 1000000) / 100.0)::VARCHAR ||
        ',"currency":"' || ['EUR','USD','GBP'][(h % 3)::INT + 1] || '","status":"' ||
        ['created','paid','shipped','delivered','cancelled'][(h % 5)::INT + 1] ||
        '","note":"' || CASE WHEN i % 1000003 = 17 THEN 'rare-marker' ELSE 'standard delivery window' END ||
        '","ts":' || ({T0} + i * {STEP})::VARCHAR || '}}' AS js
        FROM r)
      SELECT
        'kafka:local/orders/' || (i % 6)::VARCHAR || '/' || (i // 6)::VARCHAR AS id,
        'kafka' AS bus,
        (i % 6)::INTEGER AS partition,
        (i // 6)::BIGINT AS "offset",
        ('cust-' || (h % 100000)::VARCHAR)::BLOB AS key,
        ('cust-' || (h % 100000)::VARCHAR) AS key_decoded,
        [{{'key': 'trace-id', 'value': md5(i::VARCHAR)::BLOB}}] AS headers,
        make_timestamptz(({T0} + i * {STEP})::BIGINT) AS timestamp,
        make_timestamptz(({T0} + i * {STEP} + 1500)::BIGINT) AS captured_at,
        js::BLOB AS payload,
        NULL::VARCHAR AS payload_text,
        strlen(js)::BIGINT AS size,
        false AS truncated,
        'shop.v1.Order' AS schema,
        'json' AS encoding,
        js AS decoded,
        NULL::VARCHAR AS decode_error,
        NULL::VARCHAR AS properties,
        NULL::BIGINT AS sub_offset
      FROM j ORDER BY i
    ) TO '{d}/{name}' (FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 10000)
    """
    con.execute(sql)
    with open(f"{d}/.{name}.sketch", "wb") as fh:
        fh.write(b"SLSKTCH2" + os.urandom(SKETCH_BYTES - 8))
print(f"wrote {FILES} files in {time.time()-t:.1f}s")
