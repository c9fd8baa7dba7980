import duckdb, glob, os, time, statistics, re
EXT = "/tmp/objstore/venv/lib/python3.11/site-packages/duckdb_extension_httpfs/extensions/v1.5.5/httpfs.duckdb_extension"
ROOT = "/tmp/objstore/lake"
BUCKET, PREFIX = "sluice-lake", "lakes/main"
LOCAL_FILES = sorted(glob.glob(f"{ROOT}/**/part-*.parquet", recursive=True))
def newest(path):  # part-MAX-MIN-ID.parquet
    return int(os.path.basename(path).split("-")[1])
def s3_files(): return [f"s3://{BUCKET}/{PREFIX}/" + os.path.relpath(p, ROOT) for p in LOCAL_FILES]
def src(files, extra=""):
    lst = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return (f"read_parquet([{lst}], hive_partitioning = true, union_by_name = true{extra}, "
            "hive_types = {'connection': VARCHAR, 'source': VARCHAR, 'date': DATE})")
def connect(s3=False, endpoint="127.0.0.1:15999", threads=None):
    c = duckdb.connect(config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"})
    c.execute("SET TimeZone='UTC'")
    if threads: c.execute(f"SET threads={threads}")
    if s3:
        c.execute(f"LOAD '{EXT}'")
        c.execute(f"CREATE SECRET s (TYPE s3, KEY_ID 'test', SECRET 'test', ENDPOINT '{endpoint}', "
                  "URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')")
    return c
def med(xs): return statistics.median(xs)
