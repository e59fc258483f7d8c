"""The billing ledger end to end: totals match the REPORT lines, every outcome is billed as AWS bills
it, exports parse as CUR, the HTML report renders, and a killed daemon loses no record."""
import base64
import csv
import datetime
import io
import json
import math
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from decimal import Decimal

import pytest
from conftest import (ADMIN_TOKEN, BINARY, ROLE, Daemon, Tenant, collect_leftovers, create_python, free_port, shell_zip, unique,
                      zip_directory)

CUR_COLUMNS = ["identity/LineItemId", "identity/TimeInterval", "bill/BillingPeriodStartDate", "bill/BillingPeriodEndDate",
               "lineItem/UsageAccountId", "lineItem/LineItemType", "lineItem/UsageStartDate", "lineItem/UsageEndDate",
               "lineItem/ProductCode", "lineItem/UsageType", "lineItem/Operation", "lineItem/ResourceId", "lineItem/UsageAmount",
               "lineItem/UnblendedRate", "lineItem/UnblendedCost", "lineItem/CurrencyCode", "lineItem/LineItemDescription",
               "product/ProductName", "product/region", "pricing/unit"]
GB_SECOND = Decimal("0.0000166667")
REQUEST = Decimal("0.0000002")


def period():
    today = datetime.datetime.now(datetime.timezone.utc).date()
    return (today - datetime.timedelta(days=1)).isoformat(), (today + datetime.timedelta(days=1)).isoformat()


def billing(daemon, *args):
    start, end = period()
    return subprocess.run([BINARY, "billing", *args, "--state-dir", daemon.state, "--from", start, "--to", end],
                          capture_output=True, text=True, check=True).stdout


def report_fields(log):
    line = [l for l in log.split("\n") if l.startswith("REPORT RequestId: ")][-1]
    return dict(part.split(": ", 1) for part in line.strip("\t").split("\t"))


def test_export_totals_equal_the_report_lines(alice, daemon):
    client = alice.client()
    name = create_python(client, memory=1536)
    billed_ms, gb_seconds = 0, Decimal(0)
    for index in range(6):
        response = client.invoke(FunctionName=name, LogType="Tail", Payload=json.dumps({"sleep": 0.01 * index}).encode())
        fields = report_fields(base64.b64decode(response["LogResult"]).decode())
        billed = int(fields["Billed Duration"].split()[0])
        billed_ms += billed
        gb_seconds += Decimal(1536) / 1024 * Decimal(billed) / 1000
        duration = Decimal(fields["Duration"].split()[0])
        init = Decimal(fields.get("Init Duration", "0 ms").split()[0])
        assert billed == math.ceil(duration + init), "Billed Duration = ceil(Duration + Init Duration)"
    lines = [json.loads(l) for l in billing(daemon, "export", "--format", "jsonl", "--tenant", alice.account, "--function", name).splitlines()]
    assert sum(l["requests"] for l in lines) == 6
    assert sum(l["billedMs"] for l in lines) == billed_ms, "to the millisecond"
    assert sum(Decimal(l["gbSeconds"]) for l in lines) == gb_seconds
    expected = gb_seconds * GB_SECOND + 6 * REQUEST
    assert sum(Decimal(l["cost"]) for l in lines).quantize(Decimal("0.01")) == expected.quantize(Decimal("0.01")), "to the cent"
    assert abs(sum(Decimal(l["cost"]) for l in lines) - expected) < Decimal("0.000000001")


def test_every_outcome_is_billed_and_throttles_are_not(alice, daemon):
    client = alice.client()
    cases = {}
    cases["success"] = create_python(client)
    cases["function_error"] = create_python(client, handler="app.fail")
    cases["timeout"] = create_python(client, handler="app.sleep", Timeout=1)
    cases["out_of_memory"] = create_python(client, handler="app.oom", memory=128, Timeout=30)
    cases["runtime_exit"] = create_python(client, handler="app.exit")
    broken = unique("broken")
    client.create_function(FunctionName=broken, Runtime="python3.11", Role=ROLE, Handler="app.handler", MemorySize=1024,
                           Code={"ZipFile": zip_directory(None, {"app.py": b"import nope\n"})})
    cases["init_error"] = broken
    for outcome, name in cases.items():
        client.invoke(FunctionName=name, Payload=b'{"seconds": 5}')
    throttled = create_python(client)
    client.put_function_concurrency(FunctionName=throttled, ReservedConcurrentExecutions=0)
    with pytest.raises(client.exceptions.TooManyRequestsException):
        client.invoke(FunctionName=throttled)
    entries = [json.loads(l) for l in billing(daemon, "entries", "--tenant", alice.account).splitlines()]
    by_function = {}
    for entry in entries:
        by_function.setdefault(entry["functionArn"].split(":")[-1], []).append(entry)
    for outcome, name in cases.items():
        assert [e["outcome"] for e in by_function[name]] == [outcome], name
        assert by_function[name][0]["billedMs"] >= 1 and by_function[name][0]["requests"] == 1
    assert by_function[cases["timeout"]][0]["billedMs"] >= 1000, "a timeout is billed to the timeout"
    assert by_function[broken][0]["initBilled"] is True and Decimal(by_function[broken][0]["initMs"]) > 0
    assert throttled not in by_function, "a throttled request is not billed"


def test_csv_is_a_cost_and_usage_report(alice, daemon):
    client = alice.client()
    name = create_python(client)
    client.invoke(FunctionName=name)
    text = billing(daemon, "export", "--format", "csv", "--group-by", "day,function")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(csv.reader(io.StringIO(text)))[0] == CUR_COLUMNS
    mine = [r for r in rows if r["lineItem/ResourceId"].endswith(f":function:{name}")]
    assert sorted(r["lineItem/UsageType"] for r in mine) == ["Lambda-GB-Second", "Request"]
    for row in mine:
        assert row["lineItem/UsageAccountId"] == alice.account and row["lineItem/ProductCode"] == "AWSLambda"
        assert Decimal(row["lineItem/UnblendedCost"]) == (Decimal(row["lineItem/UsageAmount"]) * Decimal(row["lineItem/UnblendedRate"])).quantize(Decimal("1E-10"))
    assert billing(daemon, "export", "--format", "csv") == billing(daemon, "export", "--format", "csv"), "the same every time"
    by_tenant = list(csv.DictReader(io.StringIO(billing(daemon, "export", "--group-by", "month,tenant"))))
    assert all(r["lineItem/ResourceId"] == "" for r in by_tenant)
    summary = billing(daemon, "summary")
    assert name in summary and "TOTAL" in summary


def test_admin_endpoint_serves_the_same_report(daemon):
    start, end = period()
    url = f"{daemon.endpoint}/admin/billing/export?from={start}&to={end}&format=csv&groupBy=day,function"
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(url, timeout=10)
    assert error.value.code == 401
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        served = response.read().decode()
    assert served == billing(daemon, "export", "--format", "csv", "--group-by", "day,function")


def test_html_report_renders_with_its_charts(alice, bob, daemon, tmp_path):
    for tenant in (alice, bob):
        client = tenant.client()
        name = create_python(client)
        for _ in range(3):
            client.invoke(FunctionName=name)
    page = tmp_path / "report.html"
    billing(daemon, "report", "--html", str(page))
    html = page.read_text()
    assert "<script" not in html and 'src="http' not in html
    shot = tmp_path / "report.png"
    subprocess.run(["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,900",
                    f"--screenshot={shot}", f"file://{page}"], capture_output=True, timeout=120, check=True)
    from PIL import Image
    image = Image.open(shot).convert("RGB")
    # The cost chart (left, top) must hold the first series' colour (#1f77b4) and the second's (#d62728).
    region = image.crop((20, 110, 600, 400))
    pixels = [region.getpixel((x, y)) for x in range(region.width) for y in range(region.height)]
    assert (31, 119, 180) in pixels, "the first tenant's line is not drawn"
    assert (214, 39, 40) in pixels, "the second tenant's line is not drawn"
    assert pixels.count((31, 119, 180)) > 50


def test_no_record_is_lost_or_duplicated_when_the_daemon_is_killed():
    state = tempfile.mkdtemp(prefix="lamina-crash-test-")
    parent = f"lamina-crash-test-{os.getpid()}"
    daemon = Daemon(state, free_port(), parent).start()
    try:
        tenant = Tenant(daemon, unique("frank"))
        client = tenant.client()
        name = unique("load")
        client.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="echo",
                               Code={"ZipFile": shell_zip()}, MemorySize=256)
        received, lock, stop = [], threading.Lock(), threading.Event()

        def load():
            own = tenant.client(read_timeout=10)
            while not stop.is_set():
                try:
                    response = own.invoke(FunctionName=name, Payload=b'{"n": 1}')
                    response["Payload"].read()
                    with lock:
                        received.append(response["ResponseMetadata"]["RequestId"])
                except Exception:
                    return

        workers = [threading.Thread(target=load) for _ in range(6)]
        for worker in workers:
            worker.start()
        time.sleep(3)
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait()
        stop.set()
        for worker in workers:
            worker.join(30)
        assert len(received) > 20, "the load did not run"
        collect_leftovers(state, parent)
        daemon = Daemon(state, free_port(), parent).start()
        start, end = period()
        out = subprocess.run([BINARY, "billing", "entries", "--state-dir", state, "--from", start, "--to", end],
                             capture_output=True, text=True, check=True).stdout
        entries = [json.loads(l) for l in out.splitlines()]
        ids = [e["requestId"] for e in entries]
        assert len(ids) == len(set(ids)), "a ledger entry is duplicated"
        missing = set(received) - set(ids)
        assert not missing, f"{len(missing)} answered invocations have no ledger entry"
        assert daemon.stop() == 0
    finally:
        daemon.stop(signal.SIGKILL)
        collect_leftovers(state, parent)
        subprocess.run(["rm", "-rf", state])
