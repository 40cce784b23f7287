"""A deleted function's CreateFunction request from its archived configuration, pure (no I/O):
every setting GetFunction returns that CreateFunction takes back.

Copied as they were: role, runtime (or its replacement when AWS blocks creates on it), handler,
timeout, memory, description, package type, architectures, KMS key, layers, VPC (subnets,
security groups, IPv6 dual stack), dead-letter queue, tracing, ephemeral storage, image config,
file systems, logging config, SnapStart. Left to the caller: code, environment, tags."""

from __future__ import annotations

from typing import Any

_PLAIN = (
    "Role",
    "Runtime",
    "Handler",
    "Timeout",
    "MemorySize",
    "Description",
    "PackageType",
    "Architectures",
    "KMSKeyArn",
)
_IMAGE_ONLY_DROPS = ("Runtime", "Handler")  # an image function carries neither, nor layers


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def create_settings(conf: dict[str, Any]) -> dict[str, Any]:
    """CreateFunction's settings (no FunctionName, Code, Environment or Tags) from a
    GetFunction Configuration as archived."""
    out: dict[str, Any] = {k: conf[k] for k in _PLAIN if _present(conf.get(k))}
    if conf.get("Layers"):
        out["Layers"] = [layer["Arn"] for layer in conf["Layers"]]
    vpc = conf.get("VpcConfig") or {}
    if vpc.get("SubnetIds"):
        out["VpcConfig"] = {
            "SubnetIds": list(vpc["SubnetIds"]),
            "SecurityGroupIds": list(vpc.get("SecurityGroupIds") or []),
        }
        if vpc.get("Ipv6AllowedForDualStack"):
            out["VpcConfig"]["Ipv6AllowedForDualStack"] = True
    if (conf.get("DeadLetterConfig") or {}).get("TargetArn"):
        out["DeadLetterConfig"] = {"TargetArn": conf["DeadLetterConfig"]["TargetArn"]}
    if (conf.get("TracingConfig") or {}).get("Mode"):
        out["TracingConfig"] = {"Mode": conf["TracingConfig"]["Mode"]}
    if (conf.get("EphemeralStorage") or {}).get("Size"):
        out["EphemeralStorage"] = {"Size": conf["EphemeralStorage"]["Size"]}
    image = (conf.get("ImageConfigResponse") or {}).get("ImageConfig") or {}
    image = {k: v for k, v in image.items() if _present(v)}
    if image:
        out["ImageConfig"] = image
    if conf.get("FileSystemConfigs"):
        out["FileSystemConfigs"] = [
            {"Arn": fs["Arn"], "LocalMountPath": fs["LocalMountPath"]}
            for fs in conf["FileSystemConfigs"]
        ]
    logging = {k: v for k, v in (conf.get("LoggingConfig") or {}).items() if _present(v)}
    if logging:
        out["LoggingConfig"] = logging
    apply_on = (conf.get("SnapStart") or {}).get("ApplyOn")
    if apply_on and apply_on != "None":
        out["SnapStart"] = {"ApplyOn": apply_on}
    if out.get("PackageType") == "Image":
        for key in (*_IMAGE_ONLY_DROPS, "Layers"):
            out.pop(key, None)
    return out


_CREATE_ONLY = ("PackageType", "Architectures", "Description")


def update_settings(conf: dict[str, Any]) -> dict[str, Any]:
    """UpdateFunctionConfiguration's settings that make $LATEST look like `conf` (a version's
    configuration as archived): what create_settings gives, less what only a create or a code
    update sets, and less the description (a version carries its own)."""
    return {k: v for k, v in create_settings(conf).items() if k not in _CREATE_ONLY}


def qualifier_of(arn: str) -> str | None:
    """The qualifier of a function ARN (`...:function:NAME:QUALIFIER`), None when unqualified."""
    parts = arn.split(":")
    return parts[7] if len(parts) > 7 and parts[7] else None


def stream_table(arn: str) -> str | None:
    """The table of a DynamoDB stream ARN (`arn:aws:dynamodb:R:A:table/NAME/stream/LABEL`)."""
    if ":dynamodb:" not in arn or "/stream/" not in arn:
        return None
    return arn.split(":table/", 1)[1].split("/stream/", 1)[0]
