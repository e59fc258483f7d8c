"""SigV4 verification and tenant isolation."""
import datetime
import subprocess
import time
import urllib.error
import urllib.request
from unittest import mock

import botocore.auth
import botocore.credentials
import pytest
from botocore.awsrequest import AWSRequest
from conftest import ROLE, create_python, unique, zip_directory


def send(request):
    """Sends a prepared AWSRequest with urllib; returns (status, headers, body)."""
    prepared = request.prepare()
    raw = urllib.request.Request(prepared.url, data=prepared.body or None, method=prepared.method, headers=dict(prepared.headers))
    try:
        with urllib.request.urlopen(raw, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def signed(tenant, method, path, body=b"", secret=None, when=None, service="lambda"):
    request = AWSRequest(method=method, url=f"{tenant.daemon.endpoint}{path}", data=body,
                        headers={"Content-Type": "application/json"} if body else {})
    credentials = botocore.credentials.Credentials(tenant.key, secret or tenant.secret)
    signer = botocore.auth.SigV4Auth(credentials, service, "us-east-1")
    if when is not None:
        with mock.patch("botocore.auth.get_current_datetime", return_value=when):
            signer.add_auth(request)
    else:
        signer.add_auth(request)
    return request


def test_wrong_secret_is_an_invalid_signature(alice):
    client = alice.client(secret="x" * 40)
    with pytest.raises(client.exceptions.ClientError) as error:
        client.list_functions()
    assert error.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "does not match the signature you provided" in str(error.value)


def test_unknown_key_is_an_unrecognized_client(alice):
    client = alice.client(key="AKIAUNKNOWNUNKNOWN00")
    with pytest.raises(client.exceptions.ClientError) as error:
        client.list_functions()
    assert error.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert "The security token included in the request is invalid." in str(error.value)


def test_expired_and_future_dates_are_refused(alice):
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=10)
    status, headers, body = send(signed(alice, "GET", "/2015-03-31/functions", when=old))
    assert status == 403 and headers.get("x-amzn-ErrorType") == "InvalidSignatureException"
    assert b"Signature expired" in body
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10)
    status, headers, body = send(signed(alice, "GET", "/2015-03-31/functions", when=future))
    assert status == 403 and b"Signature not yet current" in body
    recent = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=3)
    assert send(signed(alice, "GET", "/2015-03-31/functions", when=recent))[0] == 200


def test_tampered_body_is_refused(alice):
    request = signed(alice, "POST", "/2015-03-31/functions/anything/invocations", body=b'{"amount": 1}')
    request.data = b'{"amount": 1000}'
    status, headers, _ = send(request)
    assert status == 403 and headers.get("x-amzn-ErrorType") == "InvalidSignatureException"


def test_missing_signature_and_wrong_service(alice):
    raw = urllib.request.Request(f"{alice.daemon.endpoint}/2015-03-31/functions")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(raw, timeout=10)
    assert error.value.code == 403 and error.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    status, _, body = send(signed(alice, "GET", "/2015-03-31/functions", service="s3"))
    assert status == 403 and b"Credential should be scoped to correct service" in body


def test_presigned_query_string_is_accepted(alice):
    request = AWSRequest(method="GET", url=f"{alice.daemon.endpoint}/2015-03-31/functions")
    botocore.auth.SigV4QueryAuth(botocore.credentials.Credentials(alice.key, alice.secret), "lambda", "us-east-1", expires=60).add_auth(request)
    status, _, body = send(request)
    assert status == 200 and b'"Functions"' in body


def test_revoked_and_rotated_keys(daemon, alice):
    from conftest import Tenant
    carol = Tenant(daemon, unique("carol"))
    client = carol.client()
    client.list_functions()
    rotated = __import__("json").loads(daemon.lamina("tenant", "keys", "rotate", carol.name, "--json"))
    time.sleep(1.2)  # the daemon caches keys for a second
    with pytest.raises(client.exceptions.ClientError) as error:
        client.list_functions()
    assert error.value.response["Error"]["Code"] == "UnrecognizedClientException"
    carol.client(key=rotated["accessKeyId"], secret=rotated["secretAccessKey"]).list_functions()
    daemon.lamina("tenant", "keys", "revoke", rotated["accessKeyId"])
    time.sleep(1.2)
    with pytest.raises(Exception):
        carol.client(key=rotated["accessKeyId"], secret=rotated["secretAccessKey"]).list_functions()


def test_tenants_are_isolated_both_ways(alice, bob):
    a, b = alice.client(), bob.client()
    mine = create_python(a)
    theirs = create_python(b)
    alices_arn = f"arn:aws:lambda:us-east-1:{alice.account}:function:{mine}"
    for operation in (lambda: b.get_function(FunctionName=mine), lambda: b.get_function(FunctionName=alices_arn),
                      lambda: b.invoke(FunctionName=alices_arn), lambda: b.invoke(FunctionName=mine),
                      lambda: b.update_function_configuration(FunctionName=alices_arn, Timeout=5),
                      lambda: b.publish_version(FunctionName=alices_arn), lambda: b.delete_function(FunctionName=alices_arn),
                      lambda: b.list_tags(Resource=alices_arn), lambda: b.tag_resource(Resource=alices_arn, Tags={"x": "y"}),
                      lambda: b.put_function_concurrency(FunctionName=alices_arn, ReservedConcurrentExecutions=1)):
        with pytest.raises(b.exceptions.ResourceNotFoundException):
            operation()
    assert mine not in [f["FunctionName"] for f in b.list_functions()["Functions"]]
    assert theirs not in [f["FunctionName"] for f in a.list_functions()["Functions"]]
    with pytest.raises(a.exceptions.ResourceNotFoundException):
        a.get_function(FunctionName=f"arn:aws:lambda:us-east-1:{bob.account}:function:{theirs}")
    # Layers too: bob can neither read nor use alice's.
    layer = a.publish_layer_version(LayerName=unique("private"), Content={"ZipFile": zip_directory(None, {"python/p.py": b"X = 1\n"})})
    with pytest.raises(b.exceptions.ResourceNotFoundException):
        b.get_layer_version_by_arn(Arn=layer["LayerVersionArn"])
    with pytest.raises(b.exceptions.InvalidParameterValueException):
        b.create_function(FunctionName=unique("steal"), Runtime="python3.11", Role=ROLE, Handler="a.b",
                          Code={"ZipFile": zip_directory(None, {"a.py": b""})}, Layers=[layer["LayerVersionArn"]])
    assert a.get_function(FunctionName=mine)["Configuration"]["FunctionName"] == mine


def test_region_of_the_credential_scope_is_in_the_arns(alice):
    client = alice.client(region="eu-west-1")
    name = create_python(client)
    assert client.get_function(FunctionName=name)["Configuration"]["FunctionArn"] == f"arn:aws:lambda:eu-west-1:{alice.account}:function:{name}"
