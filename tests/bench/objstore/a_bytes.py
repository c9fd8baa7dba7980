"""Bytes and requests each option-A query moves (one cold run, DuckDB HTTP log)."""
from common import *
import bench_a_queries as Qm
import json
out = {}
for k, f in Qm.queries(True).items():
    c = connect(True); c.execute("CALL enable_logging('HTTP')"); f(c)
    n, b = c.sql("SELECT count(*), sum(coalesce(TRY_CAST(response.headers['Content-Length'] AS BIGINT),0)) FROM duckdb_logs_parsed('HTTP') WHERE request.type='GET'").fetchone()
    out[k] = (n, b); print(k, n, f"{b/1e6:.1f} MB", flush=True)
json.dump(out, open('/tmp/objstore/res_a_bytes.json','w'))
