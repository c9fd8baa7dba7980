"""A small in-memory Schema Registry speaking the Confluent REST API, for the tests.

Karapace (the open-source registry the issue names) is not published on PyPI and Confluent's
own registry is a Java service outside the registries this machine reaches, so the tests run
this stand-in instead. It implements what clients use: registering a schema under a subject
(ids shared by identical schemas, GUIDs too), looking one up, fetching by id, GUID or
subject/version, listing subjects, and optional basic or bearer auth. confluent-kafka's own
serializers register and frame against it, so the bytes on the wire are theirs, not ours."""

import base64
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


class FakeRegistry:
    def __init__(self, user=None, password=None, token=None):
        self.auth = None
        if user:
            self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        elif token:
            self.auth = f"Bearer {token}"
        self.schemas = []  # dicts: id, guid, schema, schemaType, references
        self.subjects = {}  # subject -> [schema index per version]
        self.requests = []
        self.lock = threading.Lock()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def reply(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def handle_any(self, method):
                path = urlparse(self.path).path
                with registry.lock:
                    registry.requests.append((method, path))
                if registry.auth and self.headers.get("Authorization") != registry.auth:
                    return self.reply(401, {"error_code": 401, "message": "Unauthorized"})
                body = None
                if method == "POST":
                    n = int(self.headers.get("Content-Length") or 0)
                    body = json.loads(self.rfile.read(n) or b"{}")
                code, out = registry.route(method, path, body)
                self.reply(code, out)

            def do_GET(self):
                self.handle_any("GET")

            def do_POST(self):
                self.handle_any("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def _view(self, s, subject=None, version=None):
        out = {"id": s["id"], "guid": s["guid"], "schema": s["schema"]}
        if s["schemaType"] != "AVRO":  # Confluent leaves it out for Avro
            out["schemaType"] = s["schemaType"]
        if s["references"]:
            out["references"] = s["references"]
        if subject is not None:
            out.update(subject=subject, version=version)
        return out

    def _find(self, body):
        key = (body["schema"], body.get("schemaType", "AVRO"), json.dumps(body.get("references") or []))
        for s in self.schemas:
            if (s["schema"], s["schemaType"], json.dumps(s["references"])) == key:
                return s
        return None

    def route(self, method, path, body):
        with self.lock:
            m = re.fullmatch(r"/subjects/(.+)/versions", path)
            if method == "POST" and m:
                subject = unquote(m.group(1))
                s = self._find(body)
                if s is None:
                    s = {
                        "id": len(self.schemas) + 1,
                        "guid": str(uuid.uuid4()),
                        "schema": body["schema"],
                        "schemaType": body.get("schemaType", "AVRO"),
                        "references": body.get("references") or [],
                    }
                    self.schemas.append(s)
                versions = self.subjects.setdefault(subject, [])
                if s["id"] not in versions:
                    versions.append(s["id"])
                return 200, {"id": s["id"], "guid": s["guid"], "version": versions.index(s["id"]) + 1}
            m = re.fullmatch(r"/subjects/([^/]+)", path)
            if method == "POST" and m:
                subject = unquote(m.group(1))
                s = self._find(body)
                if s is None or s["id"] not in self.subjects.get(subject, []):
                    return 404, {"error_code": 40403, "message": "Schema not found"}
                return 200, self._view(s, subject, self.subjects[subject].index(s["id"]) + 1)
            m = re.fullmatch(r"/schemas/ids/(\d+)", path)
            if m:
                i = int(m.group(1))
                if 1 <= i <= len(self.schemas):
                    return 200, self._view(self.schemas[i - 1])
                return 404, {"error_code": 40403, "message": "Schema not found"}
            m = re.fullmatch(r"/schemas/guids/([0-9a-f-]+)", path)
            if m:
                for s in self.schemas:
                    if s["guid"] == m.group(1):
                        return 200, self._view(s)
                return 404, {"error_code": 40403, "message": "Schema not found"}
            m = re.fullmatch(r"/subjects/(.+)/versions/(latest|\d+)", path)
            if m:
                subject = unquote(m.group(1))
                versions = self.subjects.get(subject)
                if not versions:
                    return 404, {"error_code": 40401, "message": "Subject not found"}
                v = len(versions) if m.group(2) == "latest" else int(m.group(2))
                if not 1 <= v <= len(versions):
                    return 404, {"error_code": 40402, "message": "Version not found"}
                return 200, self._view(self.schemas[versions[v - 1] - 1], subject, v)
            if path == "/subjects":
                return 200, sorted(self.subjects)
            return 404, {"error_code": 404, "message": f"no route {method} {path}"}
