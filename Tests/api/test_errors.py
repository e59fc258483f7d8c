"""Every error class as the right botocore exception, and AWS's validation."""
import os
import shutil

import pytest
from conftest import ROLE, create_python, python_zip, unique, zip_directory


def test_not_found_and_conflict(alice):
    client = alice.client()
    with pytest.raises(client.exceptions.ResourceNotFoundException) as error:
        client.get_function(FunctionName="does-not-exist")
    assert str(error.value).endswith(f"Function not found: arn:aws:lambda:us-east-1:{alice.account}:function:does-not-exist")
    name = create_python(client)
    with pytest.raises(client.exceptions.ResourceConflictException) as error:
        create_python(client, name=name)
    assert f"Function already exist: {name}" in str(error.value)


def test_invalid_parameters(alice):
    client = alice.client()
    base = dict(Runtime="python3.11", Role=ROLE, Handler="app.handler", Code={"ZipFile": python_zip()})
    with pytest.raises(client.exceptions.InvalidParameterValueException) as error:
        client.create_function(FunctionName=unique("m"), MemorySize=10241, **base)
    assert "less than or equal to 10240" in str(error.value)
    with pytest.raises(client.exceptions.InvalidParameterValueException) as error:
        client.create_function(FunctionName=unique("rt"), **{**base, "Runtime": "nodejs20.x"})
    assert "nodejs20.x" in str(error.value)
    with pytest.raises(client.exceptions.InvalidParameterValueException) as error:
        client.create_function(FunctionName=unique("env"), Environment={"Variables": {"AWS_REGION": "x"}}, **base)
    assert "reserved keys" in str(error.value) and "AWS_REGION" in str(error.value)
    with pytest.raises(client.exceptions.InvalidParameterValueException) as error:
        client.create_function(FunctionName=unique("env"), Environment={"Variables": {"BIG": "x" * 5000}}, **base)
    assert "exceeded the 4KB limit" in str(error.value)
    with pytest.raises(client.exceptions.InvalidParameterValueException) as error:
        client.create_function(FunctionName=unique("zip"), **{**base, "Code": {"ZipFile": b"not a zip at all"}})
    assert "Could not unzip uploaded file" in str(error.value)
    traversal = zip_directory(None, {"../../escape.py": b"x"})
    with pytest.raises(client.exceptions.InvalidParameterValueException) as error:
        client.create_function(FunctionName=unique("zip"), **{**base, "Code": {"ZipFile": traversal}})
    assert "escapes" in str(error.value)


@pytest.mark.parametrize("field,value,message", [
    ("Timeout", 901, "Member must have value less than or equal to 900"),
    ("Handler", "has space", "Member must satisfy regular expression pattern"),
    ("FunctionName", "x" * 70, "Member must have length less than or equal to 64"),
])
def test_validation_errors_read_as_aws(alice, field, value, message):
    client = alice.client()
    parameters = dict(FunctionName=unique("v"), Runtime="python3.11", Role=ROLE, Handler="app.handler", Code={"ZipFile": python_zip()})
    parameters[field] = value
    with pytest.raises(client.exceptions.ClientError) as error:
        client.create_function(**parameters)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert message in str(error.value)


def test_precondition_failed_on_stale_revision(alice):
    client = alice.client()
    name = create_python(client)
    revision = client.get_function(FunctionName=name)["Configuration"]["RevisionId"]
    client.update_function_configuration(FunctionName=name, Timeout=5, RevisionId=revision)
    with pytest.raises(client.exceptions.PreconditionFailedException):
        client.update_function_configuration(FunctionName=name, Timeout=6, RevisionId=revision)


def test_request_too_large(alice):
    client = alice.client()
    with pytest.raises(client.exceptions.ClientError) as error:
        client.invoke(FunctionName="anything", Payload=b"0" * 6_300_000)
    assert error.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413


def test_service_exception_when_the_code_store_is_damaged(alice, daemon):
    client = alice.client()
    name = create_python(client, name=unique("damaged"))
    digest = client.get_function(FunctionName=name)["Code"]["Location"].split("/_lamina/code/")[1].split("?")[0]
    layers = os.path.join(daemon.state, "layers")
    shutil.rmtree(os.path.join(layers, "trees", f"{digest}.task"))
    os.remove(os.path.join(layers, "trees", f"{digest}.task.json"))
    os.rename(os.path.join(layers, "archives", f"{digest}.zip"), os.path.join(layers, "archives", f"{digest}.zip.moved"))
    try:
        with pytest.raises(client.exceptions.ServiceException):
            client.invoke(FunctionName=name)
    finally:
        os.rename(os.path.join(layers, "archives", f"{digest}.zip.moved"), os.path.join(layers, "archives", f"{digest}.zip"))
    # Restored, it works again (the tree is extracted anew).
    assert client.invoke(FunctionName=name)["StatusCode"] == 200
