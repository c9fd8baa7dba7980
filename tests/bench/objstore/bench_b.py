"""Option B: Sluice lists and fetches objects itself (boto3 standing in for object_store), into a
local cache that DuckDB reads. usage: bench_b.py ENDPOINT_URL LABEL [N]"""
from common import *
import boto3, json, shutil, sys, struct
from concurrent.futures import ThreadPoolExecutor
from botocore.config import Config
import pyarrow as pa, pyarrow.parquet as pq
EP, label = sys.argv[1], sys.argv[2]; N = int(sys.argv[3]) if len(sys.argv) > 3 else 5
CACHE = "/tmp/objstore/cache"
ORDER = 'ORDER BY coalesce(timestamp, captured_at) DESC, captured_at DESC, "offset" DESC, sub_offset DESC'
def client():
    return boto3.client("s3", endpoint_url=EP, aws_access_key_id="test", aws_secret_access_key="test",
                        region_name="us-east-1", config=Config(max_pool_connections=16))
s3 = client()
def list_lake():
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX + "/"):
        keys += [(o["Key"], o["Size"]) for o in page.get("Contents", [])]
    data = [k for k in keys if os.path.basename(k[0]).startswith("part-") and k[0].endswith(".parquet")]
    sketches = [k for k in keys if k[0].endswith(".sketch")]
    return data, sketches
def local_path(key): return os.path.join(CACHE, os.path.relpath(key, PREFIX))
def fetch(key):
    p = local_path(key)
    if os.path.exists(p): return p
    os.makedirs(os.path.dirname(p), exist_ok=True)
    s3.download_file(BUCKET, key, p + ".tmp"); os.rename(p + ".tmp", p)
    return p
def fetch_all(keys, par=8):
    with ThreadPoolExecutor(par) as ex: return list(ex.map(fetch, keys))
def clear(): shutil.rmtree(CACHE, ignore_errors=True)
def nk(k): return int(os.path.basename(k).split("-")[1])

def first_page(nfiles, cold):
    if cold: clear()
    data, _ = list_lake()
    newest_keys = [k for k, _ in sorted(data, key=lambda x: nk(x[0]), reverse=True)[:nfiles]]
    paths = fetch_all(newest_keys, par=nfiles)
    c = connect(False)
    r = c.sql(f"SELECT * FROM {src(paths)} {ORDER} LIMIT 100").fetchall(); assert len(r) == 100
def count_download(cold):
    if cold: clear()
    data, _ = list_lake()
    paths = fetch_all([k for k, _ in data], par=8)
    return connect(False).sql(f"SELECT count(*) FROM {src(paths)}").fetchone()[0]
def footer_rows(key_size):
    key, size = key_size
    tail = s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes=-{min(size, 65536)}")["Body"].read()
    n = struct.unpack("<I", tail[-8:-4])[0]
    if n + 8 > len(tail):  # footer longer than the guess: one more ranged GET
        tail = s3.get_object(Bucket=BUCKET, Key=key, Range=f"bytes=-{n + 8}")["Body"].read()
    return pq.read_metadata(pa.BufferReader(tail)).num_rows
def count_footers(par):
    data, _ = list_lake()
    with ThreadPoolExecutor(par) as ex: return sum(ex.map(footer_rows, data))
def text_search(cold):
    """list + every sketch (1 MiB each) + download the files whose sketch says maybe (here:
    the 10 files that hold a match) + DuckDB LIKE over just those."""
    if cold: clear()
    data, sketches = list_lake()
    with ThreadPoolExecutor(8) as ex:
        list(ex.map(lambda k: s3.get_object(Bucket=BUCKET, Key=k[0])["Body"].read(), sketches))
    hit_files = sorted({os.path.relpath(p, ROOT) for p in LOCAL_FILES_WITH_RARE})
    paths = fetch_all([f"{PREFIX}/{h}" for h in hit_files])
    return connect(False).sql(f"SELECT count(*) FROM {src(paths)} WHERE decoded LIKE '%rare%'").fetchone()[0]
LOCAL_FILES_WITH_RARE = [r[0] for r in connect(False).sql(
    f"SELECT DISTINCT filename FROM {src(LOCAL_FILES, ', filename=true')} WHERE decoded LIKE '%rare%'").fetchall()]

def timeit(f, n):
    xs = []
    for _ in range(n):
        t = time.perf_counter(); out = f(); xs.append(time.perf_counter() - t)
    return med(xs), xs, out
res = {}
def rec(name, f, n=N):
    m, xs, out = timeit(f, n); res[name] = {"median": m, "all": xs, "out": out}
    print(label, name, f"{m:.3f}s", [round(x, 3) for x in xs], out if isinstance(out, int) else "", flush=True)
rec("list_only", lambda: len(list_lake()[0]))
rec("first_page_newest2_cold", lambda: first_page(2, True))
rec("first_page_newest4_cold", lambda: first_page(4, True))
rec("first_page_newest2_cached", lambda: first_page(2, False))
rec("count_footers_par1", lambda: count_footers(1))
rec("count_footers_par8", lambda: count_footers(8))
rec("count_footers_par32", lambda: count_footers(32))
rec("text_search_sketches_then_10_files_cold", lambda: text_search(True), 3)
rec("count_download_all_cold", lambda: count_download(True), 3)
rec("count_all_cached", lambda: count_download(False))
json.dump(res, open(f"/tmp/objstore/res_b_{label}.json", "w"), indent=1)
