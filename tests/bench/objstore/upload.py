import boto3, os, time, sys
from boto3.s3.transfer import TransferConfig
EP = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:15999"
s3 = boto3.client("s3", endpoint_url=EP, aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
B, P, ROOT = "sluice-lake", "lakes/main", "/tmp/objstore/lake"
try: s3.create_bucket(Bucket=B)
except s3.exceptions.BucketAlreadyOwnedByYou: pass
t = time.time(); n = 0
for d, _, fs in os.walk(ROOT):
    for f in fs:
        rel = os.path.relpath(os.path.join(d, f), ROOT)
        s3.upload_file(os.path.join(d, f), B, f"{P}/{rel}", Config=TransferConfig(max_concurrency=4))
        n += 1
print(f"uploaded {n} objects in {time.time()-t:.1f}s")
