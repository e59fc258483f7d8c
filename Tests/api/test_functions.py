"""The function life cycle, versions, aliases, tags, concurrency and account settings through boto3 and awscli."""
import json
import os

import pytest
from conftest import ROLE, create_python, python_zip, shell_zip, unique


def test_whole_life_cycle_with_awscli(alice, tmp_path):
    name = unique("cli")
    package = tmp_path / "fn.zip"
    package.write_bytes(python_zip())
    created = json.loads(alice.aws("create-function", "--function-name", name, "--runtime", "python3.11", "--handler", "app.handler",
                                   "--role", ROLE, "--zip-file", f"fileb://{package}", "--memory-size", "1024", "--timeout", "10").stdout)
    assert created["State"] in ("Pending", "Active")
    assert created["FunctionArn"] == f"arn:aws:lambda:us-east-1:{alice.account}:function:{name}"
    alice.aws("wait", "function-active", "--function-name", name)
    alice.aws("wait", "function-updated", "--function-name", name)
    out = tmp_path / "out.json"
    invoked = json.loads(alice.aws("invoke", "--function-name", name, "--payload", '{"k": "v"}', str(out)).stdout)
    assert invoked["StatusCode"] == 200 and invoked["ExecutedVersion"] == "$LATEST"
    assert json.loads(out.read_text())["event"] == {"k": "v"}
    updated = json.loads(alice.aws("update-function-configuration", "--function-name", name, "--timeout", "20",
                                   "--environment", "Variables={GREETING=hi}").stdout)
    assert updated["Timeout"] == 20 and updated["Environment"]["Variables"] == {"GREETING": "hi"}
    alice.aws("wait", "function-updated", "--function-name", name)
    alice.aws("delete-function", "--function-name", name)
    missing = alice.aws("get-function", "--function-name", name, check=False)
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr


def test_create_get_update_and_delete_with_boto3(alice):
    client = alice.client()
    name = unique("fn")
    created = client.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE, Handler="app.handler",
                                     Code={"ZipFile": python_zip()}, Description="first", MemorySize=512, Timeout=5,
                                     Environment={"Variables": {"AA": "1"}}, EphemeralStorage={"Size": 1024},
                                     Architectures=["x86_64"], Tags={"team": "core"})
    assert created["Version"] == "$LATEST" and created["MemorySize"] == 512 and created["EphemeralStorage"] == {"Size": 1024}
    assert created["LastUpdateStatus"] == "Successful" and created["PackageType"] == "Zip"
    got = client.get_function(FunctionName=name)
    assert got["Configuration"]["CodeSha256"] == created["CodeSha256"]
    assert got["Tags"] == {"team": "core"}
    assert got["Code"]["RepositoryType"] == "S3" and got["Code"]["Location"].startswith("http://")
    client.get_waiter("function_active_v2").wait(FunctionName=name)
    client.get_waiter("function_exists").wait(FunctionName=name)

    config = client.update_function_configuration(FunctionName=name, Environment={"Variables": {"BB": "2"}}, Description="second")
    assert config["Environment"]["Variables"] == {"BB": "2"}, "UpdateFunctionConfiguration replaces the whole map"
    assert config["RevisionId"] != created["RevisionId"]
    code = client.update_function_code(FunctionName=name, ZipFile=shell_zip())
    assert code["CodeSha256"] != created["CodeSha256"]
    client.get_waiter("function_updated_v2").wait(FunctionName=name)
    by_arn = client.get_function_configuration(FunctionName=f"arn:aws:lambda:us-east-1:{alice.account}:function:{name}")
    assert by_arn["Description"] == "second"
    by_partial = client.get_function_configuration(FunctionName=f"{alice.account}:function:{name}")
    assert by_partial["FunctionName"] == name
    client.delete_function(FunctionName=name)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_function(FunctionName=name)


def test_list_functions_pages(alice):
    client = alice.client()
    names = sorted(create_python(client, name=unique("page")) for _ in range(3))
    seen = []
    marker = None
    while True:
        page = client.list_functions(MaxItems=2, **({"Marker": marker} if marker else {}))
        seen += [f["FunctionName"] for f in page["Functions"]]
        marker = page.get("NextMarker")
        if not marker:
            break
    assert set(names) <= set(seen)
    paginated = [f["FunctionName"] for p in client.get_paginator("list_functions").paginate(PaginationConfig={"PageSize": 2}) for f in p["Functions"]]
    assert set(names) <= set(paginated)


def test_versions_and_aliases(alice):
    client = alice.client()
    name = create_python(client)
    v1 = client.publish_version(FunctionName=name, Description="v1")
    assert v1["Version"] == "1" and v1["FunctionArn"].endswith(f":{name}:1")
    again = client.publish_version(FunctionName=name)
    assert again["Version"] == "1", "an unchanged $LATEST is not published again"
    client.update_function_configuration(FunctionName=name, Environment={"Variables": {"VV": "2"}})
    v2 = client.publish_version(FunctionName=name)
    assert v2["Version"] == "2"
    versions = [v["Version"] for v in client.list_versions_by_function(FunctionName=name)["Versions"]]
    assert versions == ["$LATEST", "1", "2"]

    alias = client.create_alias(FunctionName=name, Name="live", FunctionVersion="1", Description="production")
    assert alias["AliasArn"] == f"arn:aws:lambda:us-east-1:{alice.account}:function:{name}:live"
    with pytest.raises(client.exceptions.ResourceConflictException):
        client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert client.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "1"
    updated = client.update_alias(FunctionName=name, Name="live", FunctionVersion="2", RevisionId=alias["RevisionId"])
    assert updated["FunctionVersion"] == "2"
    with pytest.raises(client.exceptions.PreconditionFailedException):
        client.update_alias(FunctionName=name, Name="live", FunctionVersion="1", RevisionId=alias["RevisionId"])
    client.create_alias(FunctionName=name, Name="canary", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
    aliases = client.list_aliases(FunctionName=name)["Aliases"]
    assert sorted(a["Name"] for a in aliases) == ["canary", "live"]
    assert [a["RoutingConfig"]["AdditionalVersionWeights"] for a in aliases if a["Name"] == "canary"] == [{"2": 0.5}]
    with pytest.raises(client.exceptions.ResourceConflictException):
        client.delete_function(FunctionName=name, Qualifier="2")  # an alias points at it
    # Qualified configuration reads.
    assert client.get_function_configuration(FunctionName=name, Qualifier="live")["Version"] == "2"
    assert client.get_function_configuration(FunctionName=f"{name}:1")["Version"] == "1"
    client.delete_alias(FunctionName=name, Name="canary")
    client.delete_function(FunctionName=name, Qualifier="1")
    assert [v["Version"] for v in client.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST", "2"]


def test_tags(alice):
    client = alice.client()
    name = create_python(client, Tags={"a": "1"})
    arn = f"arn:aws:lambda:us-east-1:{alice.account}:function:{name}"
    client.tag_resource(Resource=arn, Tags={"b": "2", "c": "3"})
    assert client.list_tags(Resource=arn)["Tags"] == {"a": "1", "b": "2", "c": "3"}
    client.untag_resource(Resource=arn, TagKeys=["a", "c"])
    assert client.list_tags(Resource=arn)["Tags"] == {"b": "2"}


def test_reserved_concurrency_and_account_settings(alice):
    client = alice.client()
    name = create_python(client)
    before = client.get_account_settings()
    assert before["AccountLimit"]["ConcurrentExecutions"] == 1000
    assert before["AccountUsage"]["FunctionCount"] >= 1
    assert client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") is None
    assert client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=5)["ReservedConcurrentExecutions"] == 5
    assert client.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 5
    assert client.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 5}
    after = client.get_account_settings()
    assert after["AccountLimit"]["UnreservedConcurrentExecutions"] == before["AccountLimit"]["UnreservedConcurrentExecutions"] - 5
    with pytest.raises(client.exceptions.InvalidParameterValueException) as error:
        client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=950)
    assert "below its minimum value of [100]" in str(error.value)
    client.delete_function_concurrency(FunctionName=name)
    assert client.get_function_concurrency(FunctionName=name).get("ReservedConcurrentExecutions") is None
