"""Item 4: conditional writes (DuckDB httpfs, moto) and visibility of in-progress multipart uploads."""
from common import *
import boto3, botocore
EP = "http://127.0.0.1:15999"
s3 = boto3.client("s3", endpoint_url=EP, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
B = "sluice-checks"
try: s3.create_bucket(Bucket=B)
except Exception: pass
def code(f):
    try: f(); return "ok"
    except botocore.exceptions.ClientError as e: return e.response["Error"]["Code"] + " " + str(e.response["ResponseMetadata"]["HTTPStatusCode"])
print("== moto: PutObject If-None-Match: *")
print(" first :", code(lambda: s3.put_object(Bucket=B, Key="c/a.parquet", Body=b"one", IfNoneMatch="*")))
print(" second:", code(lambda: s3.put_object(Bucket=B, Key="c/a.parquet", Body=b"two", IfNoneMatch="*")))
print(" body now:", s3.get_object(Bucket=B, Key="c/a.parquet")["Body"].read())
print("== moto: CompleteMultipartUpload If-None-Match: * on an existing key")
u = s3.create_multipart_upload(Bucket=B, Key="c/a.parquet")
p = s3.upload_part(Bucket=B, Key="c/a.parquet", UploadId=u["UploadId"], PartNumber=1, Body=b"x" * 100)
print(" complete:", code(lambda: s3.complete_multipart_upload(Bucket=B, Key="c/a.parquet", UploadId=u["UploadId"],
      MultipartUpload={"Parts": [{"ETag": p["ETag"], "PartNumber": 1}]}, IfNoneMatch="*")))
print(" body now:", s3.get_object(Bucket=B, Key="c/a.parquet")["Body"].read()[:10])

print("== DuckDB 1.5.5 httpfs COPY TO s3:// (headers it sends)")
c = connect(True); c.execute("CALL enable_logging('HTTP')")
url = f"s3://{B}/d/part-1-1-x.parquet"
for opt in ["", "(FORMAT parquet)", "(FORMAT parquet, OVERWRITE)", "(FORMAT parquet, OVERWRITE_OR_IGNORE)"]:
    try:
        c.execute(f"COPY (SELECT {len(opt)} AS v) TO '{url}' {opt}"); r = "ok"
    except Exception as e: r = type(e).__name__ + ": " + str(e)[:160]
    v = c.sql(f"SELECT v FROM '{url}'").fetchall()
    print(f" COPY {opt or '(no options)'} -> {r}; object now holds v={v}")
rows = c.sql("SELECT request.type, request.url, request.headers FROM duckdb_logs_parsed('HTTP') WHERE request.type IN ('PUT','POST','DELETE')").fetchall()
hdrs = set()
for t, u_, h in rows: hdrs |= {k for k in h}
print(" write requests:", sorted({(t, u_.split('?')[-1].split('=')[0] if '?' in u_ else '') for t, u_, h in rows}))
print(" header names on writes:", sorted(hdrs))
print(" any If-None-Match/If-Match:", any(k.lower() in ('if-none-match', 'if-match') for k in hdrs))
print(" settings mentioning 'match' or 'conditional':", c.sql("SELECT name FROM duckdb_settings() WHERE name ILIKE '%match%' OR name ILIKE '%condition%' OR name ILIKE '%overwrite%'").fetchall())

print("== in-progress multipart upload visibility")
k = "lake/connection=local/source=o/date=2026-11-01/part-9-9-inprog.parquet"
s3.put_object(Bucket=B, Key="lake/connection=local/source=o/date=2026-11-01/part-1-1-done.parquet",
              Body=open(LOCAL_FILES[0], "rb").read()[:0] or b"")  # placeholder key to list
u = s3.create_multipart_upload(Bucket=B, Key=k)
data = open(LOCAL_FILES[0], "rb").read()
parts = []
for i, off in enumerate(range(0, len(data), 8 << 20), 1):
    r = s3.upload_part(Bucket=B, Key=k, UploadId=u["UploadId"], PartNumber=i, Body=data[off:off + (8 << 20)])
    parts.append({"ETag": r["ETag"], "PartNumber": i})
g = lambda: [x[0].rsplit('/', 1)[-1] for x in connect(True).sql(f"SELECT file FROM glob('s3://{B}/lake/**/*.parquet')").fetchall()]
ls = lambda: [o["Key"].rsplit('/', 1)[-1] for o in s3.list_objects_v2(Bucket=B, Prefix="lake/").get("Contents", [])]
print(" parts uploaded, not completed: duckdb glob =", g(), "; ListObjectsV2 =", ls())
print(" list_multipart_uploads:", [x["Key"].rsplit('/',1)[-1] for x in s3.list_multipart_uploads(Bucket=B).get("Uploads", [])])
s3.complete_multipart_upload(Bucket=B, Key=k, UploadId=u["UploadId"], MultipartUpload={"Parts": parts})
print(" after complete: duckdb glob =", g(), "; count =", connect(True).sql(f"SELECT count(*) FROM 's3://{B}/{k}'").fetchone())
