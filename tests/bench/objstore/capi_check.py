"""Load httpfs 1.5.5 into the C library Sluice links (npm libduckdb.so) through the C API."""
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
EXT = "/tmp/objstore/venv/lib/python3.11/site-packages/duckdb_extension_httpfs/extensions/v1.5.5/httpfs.duckdb_extension"
lib.duckdb_library_version.restype = ctypes.c_char_p
print("libduckdb", lib.duckdb_library_version().decode())
db, con = ctypes.c_void_p(), ctypes.c_void_p()
assert lib.duckdb_open(None, ctypes.byref(db)) == 0
assert lib.duckdb_connect(db, ctypes.byref(con)) == 0
res = (ctypes.c_byte * 128)()
lib.duckdb_result_error.restype = ctypes.c_char_p
lib.duckdb_value_varchar.restype = ctypes.c_void_p
def q(sql):
    rc = lib.duckdb_query(con, sql.encode(), res)
    if rc != 0: return "ERROR " + lib.duckdb_result_error(res).decode()[:200]
    p = lib.duckdb_value_varchar(res, ctypes.c_uint64(0), ctypes.c_uint64(0))
    return ctypes.string_at(p).decode() if p else "ok"
print(q("SELECT current_setting('allow_unsigned_extensions')::VARCHAR"))
print("LOAD:", q(f"LOAD '{EXT}'"))
print(q("CREATE SECRET s (TYPE s3, KEY_ID 'test', SECRET 'test', ENDPOINT '127.0.0.1:15999', URL_STYLE 'path', USE_SSL false, REGION 'us-east-1')"))
print("count:", q("SELECT count(*)::VARCHAR FROM read_parquet('s3://sluice-lake/lakes/main/**/*.parquet', hive_partitioning=true)"))
