"""Hybrid: Sluice lists and reads sketches itself (boto3 for object_store), DuckDB httpfs reads only
the candidate files' candidate row ranges (scan.rs parquet_source_with_names). usage: hybrid.py PORT LABEL"""
from common import *
import boto3, sys, json
from concurrent.futures import ThreadPoolExecutor
from botocore.config import Config
port, label = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="test", aws_secret_access_key="test",
                  region_name="us-east-1", config=Config(max_pool_connections=16))
# stand-in for the sketches' block bitmaps: the 10k-row blocks holding 'rare'
hits = connect(False).sql(f"SELECT filename, file_row_number // 10000 AS blk FROM {src(LOCAL_FILES, ', filename=true, file_row_number=true')} "
                          "WHERE decoded LIKE '%rare%' GROUP BY ALL").fetchall()
def run(fetch_sketches):
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX + "/"):
        keys += [o["Key"] for o in page.get("Contents", [])]
    if fetch_sketches:
        with ThreadPoolExecutor(16) as ex:
            list(ex.map(lambda k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read(), [k for k in keys if k.endswith(".sketch")]))
    c = connect(True, f"127.0.0.1:{port}", 16)
    parts = [f"SELECT * FROM {src(['s3://%s/%s/%s' % (BUCKET, PREFIX, os.path.relpath(f, ROOT))], ', filename=true, file_row_number=true')} "
             f"WHERE file_row_number BETWEEN {b*10000} AND {b*10000+9999}" for f, b in hits]
    n = c.sql(f"SELECT count(*) FROM ({' UNION ALL BY NAME '.join(parts)}) WHERE decoded LIKE '%rare%'").fetchone()[0]
    assert n == 10, n
for fs in (False, True):
    xs = []
    for _ in range(3):
        t = time.perf_counter(); run(fs); xs.append(time.perf_counter() - t)
    print(label, "hybrid_text_search", "with 80 sketch GETs" if fs else "scan part only (list + httpfs row ranges)", f"{med(xs):.3f}s", [round(x,2) for x in xs], flush=True)
