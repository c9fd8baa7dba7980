"""Option A: DuckDB reads the lake itself (local files or s3:// via httpfs). Median of N.
usage: bench_a.py local|s3 [endpoint] [label] [N]"""
from common import *
from bench_a_queries import queries
import json, sys
mode = sys.argv[1]; ep = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1:15999"
label = sys.argv[3] if len(sys.argv) > 3 else mode; N = int(sys.argv[4]) if len(sys.argv) > 4 else 5
s3 = mode == "s3"
Q = queries(s3)
only = os.environ.get("ONLY", "").split(",") if os.environ.get("ONLY") else list(Q)
threads = os.environ.get("THREADS")
res = {}
for k in only:
    f = Q[k]; cold, warm = [], []
    for i in range(N):
        c = connect(s3, ep, threads); t = time.perf_counter(); f(c); cold.append(time.perf_counter() - t); c.close()
    if not k.startswith("d_"):
        c = connect(s3, ep, threads); f(c)
        for i in range(N):
            t = time.perf_counter(); f(c); warm.append(time.perf_counter() - t)
        c.close()
    # request count of one cold run
    reqs = None
    if s3:
        c = connect(s3, ep, threads); c.execute("CALL enable_logging('HTTP')"); f(c)
        reqs = c.sql("SELECT request.type, count(*) FROM duckdb_logs_parsed('HTTP') GROUP BY ALL ORDER BY ALL").fetchall()
        c.close()
    res[k] = {"cold": med(cold), "warm": med(warm) if warm else None, "cold_all": cold, "reqs": reqs}
    print(label, k, f"cold {med(cold):.3f}s", f"warm {med(warm):.3f}s" if warm else "", reqs, flush=True)
json.dump(res, open(f"/tmp/objstore/res_a_{label}.json", "w"), indent=1)
