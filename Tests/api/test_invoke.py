"""Invoke as boto3 and awscli do it: sync, async, dry run, tails, qualifiers, limits, throttles."""
import base64
import json
import os
import threading
import time

import pytest
from conftest import ROLE, create_python, shell_zip, unique, zip_directory, FIXTURES


def payload(response):
    return response["Payload"].read()


def test_python_cold_then_warm(alice):
    client = alice.client()
    name = create_python(client)
    first = client.invoke(FunctionName=name, Payload=b'{"n": 1}', LogType="Tail")
    second = client.invoke(FunctionName=name, Payload=b'{"n": 2}', LogType="Tail")
    one, two = json.loads(payload(first)), json.loads(payload(second))
    assert first["StatusCode"] == 200 and "FunctionError" not in first
    assert (one["count"], two["count"]) == (1, 2), "the warm invocation reuses the environment"
    assert one["invoked_function_arn"] == f"arn:aws:lambda:us-east-1:{alice.account}:function:{name}"
    first_log = base64.b64decode(first["LogResult"]).decode()
    second_log = base64.b64decode(second["LogResult"]).decode()
    assert "Init Duration" in first_log and "Init Duration" not in second_log
    assert first_log.startswith("START RequestId: ") and "\nREPORT RequestId: " in first_log
    assert first["ResponseMetadata"]["RequestId"] in first_log


def test_provided_shell_runtime_cold_then_warm(alice):
    client = alice.client()
    name = unique("sh")
    client.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="echo",
                           Code={"ZipFile": shell_zip()}, MemorySize=512)
    assert json.loads(payload(client.invoke(FunctionName=name, Payload=b'{"x":1}'))) == {"count": 1, "event": {"x": 1}}
    assert json.loads(payload(client.invoke(FunctionName=name, Payload=b'{"x":2}'))) == {"count": 2, "event": {"x": 2}}


def test_tail_is_the_last_4kb_of_the_invocations_log(alice):
    client = alice.client()
    name = unique("tail")
    noisy = b"def handler(event, context):\n    for i in range(2000):\n        print(f'line {i}')\n    return 'done'\n"
    client.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="noisy.handler",
                           Code={"ZipFile": zip_directory(None, {"noisy.py": noisy})}, MemorySize=1024)
    response = client.invoke(FunctionName=name, LogType="Tail")
    tail = base64.b64decode(response["LogResult"])
    assert len(tail) == 4096
    assert tail.decode().rstrip().split("\n")[-1].startswith("REPORT RequestId: ")
    assert "line 1999" in tail.decode()
    assert "LogResult" not in client.invoke(FunctionName=name), "no tail unless asked for"


def test_function_errors_are_200_with_unhandled(alice):
    client = alice.client()
    name = create_python(client, handler="app.fail")
    response = client.invoke(FunctionName=name)
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    document = json.loads(payload(response))
    assert document["errorType"] == "Exception" and document["errorMessage"] == "Handler fails"


def test_timeout_error_document(alice):
    client = alice.client()
    name = create_python(client, handler="app.sleep", Timeout=1)
    response = client.invoke(FunctionName=name, Payload=b'{"seconds": 5}')
    assert response["FunctionError"] == "Unhandled"
    document = json.loads(payload(response))
    assert document["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.0" in document["errorMessage"]


def test_qualifiers_version_alias_and_latest(alice):
    client = alice.client()
    name = create_python(client, Environment={"Variables": {"GREETING": "v1"}})
    client.publish_version(FunctionName=name)
    client.update_function_configuration(FunctionName=name, Environment={"Variables": {"GREETING": "latest"}})
    client.create_alias(FunctionName=name, Name="stable", FunctionVersion="1")
    cases = [({"Qualifier": "1"}, "1", "v1"), ({"Qualifier": "stable"}, "1", "v1"), ({"Qualifier": "$LATEST"}, "$LATEST", "latest"),
             ({}, "$LATEST", "latest")]
    for extra, version, greeting in cases:
        response = client.invoke(FunctionName=name, **extra)
        assert response["ExecutedVersion"] == version
        assert json.loads(payload(response))["env"]["GREETING"] == greeting
    by_arn = client.invoke(FunctionName=f"arn:aws:lambda:us-east-1:{alice.account}:function:{name}:stable")
    assert by_arn["ExecutedVersion"] == "1"
    assert json.loads(payload(by_arn))["invoked_function_arn"].endswith(f":{name}:stable")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName=name, Qualifier="nope")
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName=name, Qualifier="9")


def test_dry_run_and_event(alice, daemon):
    client = alice.client()
    name = create_python(client)
    assert client.invoke(FunctionName=name, InvocationType="DryRun")["StatusCode"] == 204
    response = client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"async": true}')
    assert response["StatusCode"] == 202
    request_id = response["ResponseMetadata"]["RequestId"]
    # The queued event runs: its REPORT line lands in the function's log on disk.
    logs = os.path.join(daemon.state, "logs", alice.account, "aws", "lambda", name)
    deadline = time.time() + 30
    found = False
    while time.time() < deadline and not found:
        for base, _, files in os.walk(logs):
            for file in files:
                if f"REPORT RequestId: {request_id}" in open(os.path.join(base, file)).read():
                    found = True
        time.sleep(0.2)
    assert found, "the Event invocation never ran"


def test_payload_limits(alice):
    client = alice.client()
    name = create_python(client)
    with pytest.raises(client.exceptions.ClientError) as error:
        client.invoke(FunctionName=name, Payload=b"x" * (6_291_456 + 1))
    assert error.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert "byte payload is too large for the RequestResponse invocation type (limit 6291456 bytes)" in str(error.value)
    with pytest.raises(client.exceptions.ClientError) as error:
        client.invoke(FunctionName=name, InvocationType="Event", Payload=b"x" * (1_048_576 + 1))
    assert error.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert "(limit 1048576 bytes)" in str(error.value)
    # Exactly at the limit is fine.
    big = json.dumps({"data": "y" * (1_048_576 - 20)}).encode()
    assert client.invoke(FunctionName=name, InvocationType="Event", Payload=big)["StatusCode"] == 202


def test_concurrency_limit_throttles(alice):
    client = alice.client()
    name = create_python(client, handler="app.sleep")
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    slow = threading.Thread(target=lambda: client.invoke(FunctionName=name, Payload=b'{"seconds": 2}'))
    slow.start()
    time.sleep(1.0)
    with pytest.raises(client.exceptions.TooManyRequestsException) as error:
        client.invoke(FunctionName=name, Payload=b'{"seconds": 0}')
    assert error.value.response["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    slow.join()
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(client.exceptions.TooManyRequestsException):
        client.invoke(FunctionName=name, Payload=b'{"seconds": 0}')


def test_client_context_reaches_the_handler(alice):
    client = alice.client()
    name = create_python(client)
    context = base64.b64encode(json.dumps({"custom": {"who": "test"}}).encode()).decode()
    body = json.loads(payload(client.invoke(FunctionName=name, ClientContext=context)))
    assert body["client_context"] == {"who": "test"}
