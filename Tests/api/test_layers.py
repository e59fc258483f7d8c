"""Layers: publish, read, list, use in functions, delete."""
import json

import pytest
from conftest import ROLE, unique, zip_directory


def layer_zip(module, value):
    return zip_directory(None, {f"python/{module}.py": f"VALUE = {value!r}\n".encode(), "bin/tool": b"#!/bin/sh\necho tool\n"})


def test_publish_get_list_and_delete(alice):
    client = alice.client()
    name = unique("layer")
    v1 = client.publish_layer_version(LayerName=name, Content={"ZipFile": layer_zip("shared", "one")},
                                      CompatibleRuntimes=["python3.11"], Description="first", LicenseInfo="MIT")
    assert v1["Version"] == 1
    assert v1["LayerVersionArn"] == f"arn:aws:lambda:us-east-1:{alice.account}:layer:{name}:1"
    assert v1["Content"]["CodeSize"] > 0 and v1["Content"]["CodeSha256"]
    v2 = client.publish_layer_version(LayerName=name, Content={"ZipFile": layer_zip("shared", "two")})
    assert v2["Version"] == 2
    got = client.get_layer_version(LayerName=name, VersionNumber=1)
    assert got["Description"] == "first" and got["LicenseInfo"] == "MIT"
    assert client.get_layer_version_by_arn(Arn=v2["LayerVersionArn"])["Version"] == 2
    listed = [l for l in client.list_layers()["Layers"] if l["LayerName"] == name]
    assert listed and listed[0]["LatestMatchingVersion"]["Version"] == 2
    assert [v["Version"] for v in client.list_layer_versions(LayerName=name)["LayerVersions"]] == [2, 1]
    client.delete_layer_version(LayerName=name, VersionNumber=1)
    client.delete_layer_version(LayerName=name, VersionNumber=1)  # idempotent
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_layer_version(LayerName=name, VersionNumber=1)
    v3 = client.publish_layer_version(LayerName=name, Content={"ZipFile": layer_zip("shared", "three")})
    assert v3["Version"] == 3, "version numbers are never reused"


def test_functions_use_their_layers_later_ones_winning(alice):
    client = alice.client()
    first = client.publish_layer_version(LayerName=unique("l1"), Content={"ZipFile": layer_zip("shared", "first")})
    second = client.publish_layer_version(LayerName=unique("l2"), Content={"ZipFile": layer_zip("shared", "second")})
    code = b"import shared, subprocess\n\ndef handler(event, context):\n    return {'value': shared.VALUE, 'tool': subprocess.run(['tool'], capture_output=True, text=True).stdout}\n"
    name = unique("with-layers")
    created = client.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="main.handler", MemorySize=1024,
                                     Code={"ZipFile": zip_directory(None, {"main.py": code})},
                                     Layers=[first["LayerVersionArn"], second["LayerVersionArn"]])
    assert [l["Arn"] for l in created["Layers"]] == [first["LayerVersionArn"], second["LayerVersionArn"]]
    result = json.loads(client.invoke(FunctionName=name)["Payload"].read())
    assert result == {"value": "second", "tool": "tool\n"}
    # Deleting a layer version does not break the functions that use it.
    client.delete_layer_version(LayerName=first["LayerArn"].split(":")[-1], VersionNumber=first["Version"])
    client.update_function_configuration(FunctionName=name, Timeout=4)
    assert json.loads(client.invoke(FunctionName=name)["Payload"].read())["value"] == "second"


def test_missing_layers_and_too_many(alice):
    client = alice.client()
    missing = f"arn:aws:lambda:us-east-1:{alice.account}:layer:nope:1"
    with pytest.raises(client.exceptions.InvalidParameterValueException) as error:
        client.create_function(FunctionName=unique("f"), Runtime="python3.11", Role=ROLE, Handler="a.b",
                               Code={"ZipFile": zip_directory(None, {"a.py": b""})}, Layers=[missing])
    assert f"Layer version {missing} does not exist." in str(error.value)
    layer = client.publish_layer_version(LayerName=unique("many"), Content={"ZipFile": layer_zip("m", 1)})
    arns = [client.publish_layer_version(LayerName=unique("many"), Content={"ZipFile": layer_zip("m", i)})["LayerVersionArn"] for i in range(6)]
    with pytest.raises(client.exceptions.InvalidParameterValueException) as error:
        client.create_function(FunctionName=unique("f"), Runtime="python3.11", Role=ROLE, Handler="a.b",
                               Code={"ZipFile": zip_directory(None, {"a.py": b""})}, Layers=arns)
    assert "Cannot reference more than 5 layers." in str(error.value)
    assert layer["Version"] == 1
