"""Option A's queries, shared by bench_a.py (timings) and a_bytes.py (bytes and requests)."""
from common import *

ORDER = 'ORDER BY coalesce(timestamp, captured_at) DESC, captured_at DESC, "offset" DESC, sub_offset DESC'


def queries(s3):
    """The queries by name, over the lake on S3 (s3=True) or on local disk."""
    files = s3_files() if s3 else LOCAL_FILES
    by_new = sorted(files, key=newest, reverse=True)
    pattern = f"s3://{BUCKET}/{PREFIX}/**/*.parquet" if s3 else f"{ROOT}/**/*.parquet"

    def sluice_page(c):
        """search.rs: sort keys of newest group (4 files), then fetch the 100 rows by row number."""
        grp = by_new[:4]
        hits = c.sql(f"SELECT filename, file_row_number, epoch_us(timestamp), epoch_us(captured_at), \"offset\", sub_offset "
                     f"FROM {src(grp, ', filename = true, file_row_number = true')} AS events WHERE true {ORDER} LIMIT 100").fetchall()
        assert hits[-1][2] > newest(by_new[4])  # search stops after the first group
        byf = {}
        for h in hits: byf.setdefault(h[0], []).append(h[1])
        n = 0
        for f, rows in byf.items():
            n += len(c.sql(f"SELECT file_row_number, * FROM {src([f], ', filename = true, file_row_number = true')} "
                           f"WHERE file_row_number IN ({', '.join(map(str, rows))})").fetchall())
        assert n == 100

    Q = {
     "a_count": lambda c: c.sql(f"SELECT count(*) FROM {src(files)}").fetchall(),
     "b_count_partition1": lambda c: c.sql(f"SELECT count(*) FROM {src(files)} WHERE partition = 1").fetchall(),
     "c_page_all_files": lambda c: c.sql(f"SELECT * FROM {src(files)} {ORDER} LIMIT 100").fetchall(),
     "c_page_newest2": lambda c: c.sql(f"SELECT * FROM {src(by_new[:2])} {ORDER} LIMIT 100").fetchall(),
     "c_page_sluice_2phase": sluice_page,
     "d_glob_only": lambda c: c.sql(f"SELECT count(*) FROM glob('{pattern}')").fetchall(),
     "d_count_via_glob": lambda c: c.sql(f"SELECT count(*) FROM read_parquet('{pattern}', hive_partitioning=true)").fetchall(),
     "e_like_rare": lambda c: c.sql(f"SELECT count(*) FROM {src(files)} WHERE decoded LIKE '%rare%'").fetchall(),
    }
    return Q
