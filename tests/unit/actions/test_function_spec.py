"""Issue 19, item 2: a deleted function's CreateFunction request carries every setting it had
(pure: from GetFunction's Configuration as archived)."""

from __future__ import annotations

from engine.actions.restore.function_spec import (
    create_settings,
    qualifier_of,
    stream_table,
    update_settings,
)

ARN = "arn:aws:lambda:us-east-1:111122223333"
CONF = {
    "FunctionName": "f",
    "FunctionArn": f"{ARN}:function:f",
    "Role": "arn:aws:iam::111122223333:role/r",
    "Runtime": "python3.8",
    "Handler": "index.handler",
    "Timeout": 10,
    "MemorySize": 256,
    "Description": "legacy",
    "PackageType": "Zip",
    "Architectures": ["arm64"],
    "KMSKeyArn": "arn:aws:kms:us-east-1:111122223333:key/k",
    "Layers": [{"Arn": f"{ARN}:layer:deps:3", "CodeSize": 10}],
    "VpcConfig": {"SubnetIds": ["subnet-1"], "SecurityGroupIds": ["sg-1"], "VpcId": "vpc-1",
                  "Ipv6AllowedForDualStack": True},
    "DeadLetterConfig": {"TargetArn": "arn:aws:sqs:us-east-1:111122223333:dlq"},
    "TracingConfig": {"Mode": "Active"},
    "EphemeralStorage": {"Size": 2048},
    "FileSystemConfigs": [{"Arn": "arn:aws:elasticfilesystem:x", "LocalMountPath": "/mnt/data"}],
    "LoggingConfig": {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "LogGroup": "/x"},
    "SnapStart": {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"},
    "CodeSha256": "abc",
    "State": "Active",
    "LastModified": "2024-01-01",
}  # fmt: skip


def test_every_setting_create_function_takes_comes_back():
    out = create_settings(CONF)
    assert out == {
        "Role": CONF["Role"],
        "Runtime": "python3.8",
        "Handler": "index.handler",
        "Timeout": 10,
        "MemorySize": 256,
        "Description": "legacy",
        "PackageType": "Zip",
        "Architectures": ["arm64"],
        "KMSKeyArn": CONF["KMSKeyArn"],
        "Layers": [f"{ARN}:layer:deps:3"],
        "VpcConfig": {
            "SubnetIds": ["subnet-1"],
            "SecurityGroupIds": ["sg-1"],
            "Ipv6AllowedForDualStack": True,
        },
        "DeadLetterConfig": {"TargetArn": CONF["DeadLetterConfig"]["TargetArn"]},
        "TracingConfig": {"Mode": "Active"},
        "EphemeralStorage": {"Size": 2048},
        "FileSystemConfigs": [
            {"Arn": "arn:aws:elasticfilesystem:x", "LocalMountPath": "/mnt/data"}
        ],
        "LoggingConfig": {"LogFormat": "JSON", "ApplicationLogLevel": "INFO", "LogGroup": "/x"},
        "SnapStart": {"ApplyOn": "PublishedVersions"},
    }
    # a version's settings go through UpdateFunctionConfiguration: no create-only keys
    assert not {"PackageType", "Architectures", "Description"} & set(update_settings(CONF))


def test_an_image_function_carries_its_image_config_and_no_runtime():
    conf = {
        "Role": "r",
        "PackageType": "Image",
        "Runtime": "",
        "ImageConfigResponse": {"ImageConfig": {"Command": ["app.handler"], "EntryPoint": []}},
        "SnapStart": {"ApplyOn": "None"},
    }
    assert create_settings(conf) == {
        "Role": "r",
        "PackageType": "Image",
        "ImageConfig": {"Command": ["app.handler"]},
    }


def test_qualifiers_and_stream_tables_are_read_from_arns():
    assert qualifier_of(f"{ARN}:function:f:live") == "live"
    assert qualifier_of(f"{ARN}:function:f") is None
    stream = "arn:aws:dynamodb:us-east-1:1:table/legacy-x/stream/2024-01-01T00:00:00.000"
    assert stream_table(stream) == "legacy-x"
    assert stream_table("arn:aws:sqs:us-east-1:1:queue") is None
