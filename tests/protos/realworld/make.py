#!/usr/bin/env python3
"""Builds realworld.binpb: one FileDescriptorSet (imports included, dependencies first) of
OpenTelemetry's OTLP messages and a handful of googleapis types, taken from the descriptors
compiled into the Python packages' generated `_pb2` modules. The transcoder's differential
test decodes random messages of these types.

    pip install opentelemetry-proto googleapis-common-protos
    python3 tests/protos/realworld/make.py
"""

import importlib
import os

from google.protobuf import descriptor_pb2

MODULES = [
    "opentelemetry.proto.common.v1.common_pb2",
    "opentelemetry.proto.resource.v1.resource_pb2",
    "opentelemetry.proto.trace.v1.trace_pb2",
    "opentelemetry.proto.metrics.v1.metrics_pb2",
    "opentelemetry.proto.logs.v1.logs_pb2",
    "google.rpc.status_pb2",
    "google.rpc.error_details_pb2",
    "google.rpc.code_pb2",
    "google.type.date_pb2",
    "google.type.datetime_pb2",
    "google.type.money_pb2",
    "google.type.latlng_pb2",
    "google.type.color_pb2",
    "google.type.interval_pb2",
    "google.type.postal_address_pb2",
    "google.type.timeofday_pb2",
    "google.type.expr_pb2",
    "google.api.http_pb2",
    "google.api.httpbody_pb2",
    "google.api.label_pb2",
    "google.api.launch_stage_pb2",
    "google.api.monitored_resource_pb2",
    "google.api.metric_pb2",
    "google.api.distribution_pb2",
]


def main():
    ordered = []
    seen = set()

    def add(fd):
        if fd.name in seen:
            return
        seen.add(fd.name)
        for dep in fd.dependencies:
            add(dep)
        proto = descriptor_pb2.FileDescriptorProto()
        proto.ParseFromString(fd.serialized_pb)
        ordered.append(proto)

    for name in MODULES:
        add(importlib.import_module(name).DESCRIPTOR)
    out = descriptor_pb2.FileDescriptorSet(file=ordered)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "realworld.binpb")
    with open(path, "wb") as f:
        f.write(out.SerializeToString(deterministic=True))
    print(f"{path}: {len(ordered)} files, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
