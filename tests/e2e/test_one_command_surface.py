"""The CLI, the window and `sluice serve` run the same command table (issue 14): a `sluice
replay` runs the window's replay job, so it is in the history the window shows, and `sluice dev
bindings` prints the UI's types, the bus kinds among them."""

import json
import signal
import subprocess

from conftest import api, produce


def test_a_cli_replay_is_in_the_windows_replay_history(sluice, topic):
    src, dest = topic("surface-src", 1), topic("surface-dest", 1)
    produce(src, [{"value": json.dumps({"n": i}).encode()} for i in range(5)])
    sluice("capture", "local", src, "--stop-at-end")
    out = sluice("replay", f"source = {src}", "--to", f"local:{dest}")
    assert "5 sent, 0 failed of 5 matched" in out, out
    failed = sluice.run("replay", f"source = {src}", "--to", "nowhere:x", check=False)
    assert failed.returncode == 1 and 'unknown connection "nowhere"' in failed.stderr, failed.stderr
    serve = sluice.popen("serve", "--port", "0")
    try:
        url = serve.stdout.readline().split()[-1]
        latest, sent = api(url, "replay_history", {})[:2]
        kinds = api(url, "bus_kinds", {})
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(20)
        except subprocess.TimeoutExpired:
            serve.kill()
    assert latest["to"] == "nowhere:x" and 'unknown connection "nowhere"' in latest["error"], latest
    assert sent["to"] == f"local:{dest}" and sent["filter"] == f"source = {src}", sent
    assert (sent["matched"], sent["sent"], sent["failed"], sent["unknown"], sent["not_sent"]) == (5, 5, 0, 0, 0), sent
    assert sent["error"] is None and not sent["interrupted"], sent
    assert [k["bus"] for k in kinds] == ["kafka", "amqp", "sqs", "nats", "mqtt", "redis", "http", "collector", "postgres"]


def test_dev_bindings_prints_the_command_types(sluice):
    ts = sluice("dev", "bindings")
    assert ts.startswith("// Generated from the Rust API types by `sluice dev bindings`")
    assert "export type BusKind = " in ts and "bus_kinds: { args: NoArgs; result: Array<BusKind> };" in ts
