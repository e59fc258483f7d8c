"""The daemon itself: health, metrics, restarts that keep everything, clean shutdown."""
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

import pytest
from conftest import Daemon, Tenant, collect_leftovers, create_python, free_port, leftover_cgroups, unique, zip_directory


def get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


def test_health_and_prometheus_metrics(alice, daemon):
    client = alice.client()
    name = create_python(client)
    client.invoke(FunctionName=name)
    status, body = get(f"{daemon.endpoint}/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    status, metrics = get(f"{daemon.endpoint}/metrics")
    assert status == 200
    for metric in ("lamina_invocations_total", "lamina_cold_starts_total", "lamina_invocation_duration_seconds", "lamina_environments"):
        assert metric in metrics, f"{metric} missing from /metrics"
    assert f'function="{name}"' in metrics


def test_restart_keeps_functions_layers_and_aliases():
    state = tempfile.mkdtemp(prefix="lamina-restart-test-")
    parent = f"lamina-restart-test-{os.getpid()}"
    first = Daemon(state, free_port(), parent).start()
    try:
        tenant = Tenant(first, unique("dave"))
        client = tenant.client()
        layer = client.publish_layer_version(LayerName="shared", Content={"ZipFile": zip_directory(None, {"python/shared.py": b"VALUE = 'kept'\n"})})
        code = b"import shared\n\ndef handler(event, context):\n    return shared.VALUE\n"
        client.create_function(FunctionName="keeper", Runtime="python3.11", Role="arn:aws:iam::123456789012:role/x", Handler="main.handler",
                               Code={"ZipFile": zip_directory(None, {"main.py": code})}, MemorySize=1024, Layers=[layer["LayerVersionArn"]])
        client.publish_version(FunctionName="keeper")
        client.create_alias(FunctionName="keeper", Name="prod", FunctionVersion="1")
        assert client.invoke(FunctionName="keeper", Qualifier="prod")["Payload"].read() == b'"kept"'
        assert first.stop() == 0
        second = Daemon(state, free_port(), parent).start()
        tenant.daemon = second
        client = tenant.client()
        assert client.get_alias(FunctionName="keeper", Name="prod")["FunctionVersion"] == "1"
        assert client.get_layer_version(LayerName="shared", VersionNumber=1)["Version"] == 1
        assert [v["Version"] for v in client.list_versions_by_function(FunctionName="keeper")["Versions"]] == ["$LATEST", "1"]
        assert client.invoke(FunctionName="keeper", Qualifier="prod")["Payload"].read() == b'"kept"'
        assert second.stop() == 0
        assert leftover_cgroups(parent) == []
    finally:
        first.stop(signal.SIGKILL)
        if "second" in locals():
            second.stop(signal.SIGKILL)
        collect_leftovers(state, parent)
        subprocess.run(["rm", "-rf", state])


def test_sigterm_lets_in_flight_invocations_finish():
    state = tempfile.mkdtemp(prefix="lamina-sigterm-test-")
    parent = f"lamina-sigterm-test-{os.getpid()}"
    daemon = Daemon(state, free_port(), parent).start()
    try:
        tenant = Tenant(daemon, unique("erin"))
        client = tenant.client()
        name = create_python(client, handler="app.sleep")
        client.invoke(FunctionName=name, Payload=b'{"seconds": 0}')
        result = {}
        worker = threading.Thread(target=lambda: result.update(client.invoke(FunctionName=name, Payload=b'{"seconds": 2}')))
        worker.start()
        time.sleep(0.7)
        daemon.process.send_signal(signal.SIGTERM)
        worker.join(30)
        assert result.get("StatusCode") == 200 and result["Payload"].read() == b'"slept"'
        assert daemon.process.wait(30) == 0
        assert leftover_cgroups(parent) == []
    finally:
        daemon.stop(signal.SIGKILL)
        collect_leftovers(state, parent)
        subprocess.run(["rm", "-rf", state])
