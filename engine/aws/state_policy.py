"""The IAM grants an S3 journal needs (`runbook iam-policy --journal s3://...`): its own keys
and nothing wider. Objects: the journal, its lock, its log parts and artifacts (Get, Put,
Delete); the bucket: listing only under those keys and prefixes, and
the reads of the versioning and public-access checks; a KMS key's data keys when one is used.
"""

from __future__ import annotations

from engine.aws.grant import Grant
from engine.state.s3_location import S3Location

# the API calls engine/state makes -> their IAM actions (ListObjectsV2 is authorised as
# ListBucket, GetPublicAccessBlock as GetBucketPublicAccessBlock). No HeadObject: a missing
# key is found by listing under it, since without ListBucket on the whole bucket S3 answers
# a GET or HEAD of a missing key with 403, not 404.
STATE_CALLS = {
    "GetObject": "s3:GetObject",
    "PutObject": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
    "ListObjectsV2": "s3:ListBucket",
    "GetBucketVersioning": "s3:GetBucketVersioning",
    "GetBucketPolicyStatus": "s3:GetBucketPolicyStatus",
    "GetBucketAcl": "s3:GetBucketAcl",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
}
# S3 Control's GetPublicAccessBlock (the account's block), read when the bucket looks public;
# its action has no resource but the account ("*"). sts:GetCallerIdentity needs no grant.
ACCOUNT_CALLS = {"GetPublicAccessBlock": "s3:GetAccountPublicAccessBlock"}


def state_grants(
    location: S3Location, kms_key: str | None, account: str = "*", region: str | None = None
) -> list[Grant]:
    bucket = f"arn:aws:s3:::{location.bucket}"
    out = [
        Grant(
            "RunStateObjects",
            ("s3:GetObject", "s3:PutObject", "s3:DeleteObject"),
            (
                f"{bucket}/{location.key}",
                f"{bucket}/{location.lock_key}",
                f"{bucket}/{location.log_prefix}*",
                f"{bucket}/{location.artifacts_prefix}*",
            ),
        ),
        Grant(
            "RunStateList",
            ("s3:ListBucket",),
            (bucket,),
            {
                "StringLike": {
                    "s3:prefix": [
                        location.key,
                        location.lock_key,
                        f"{location.log_prefix}*",
                        f"{location.artifacts_prefix}*",
                    ]
                }
            },
        ),
        Grant(
            "RunStateBucketChecks",
            (
                "s3:GetBucketVersioning",
                "s3:GetBucketPolicyStatus",
                "s3:GetBucketAcl",
                "s3:GetBucketPublicAccessBlock",
            ),
            (bucket,),
        ),
    ]
    out.append(Grant("RunStateAccountBlock", ("s3:GetAccountPublicAccessBlock",), ("*",)))
    if kms_key:
        out.append(_kms_grant(kms_key, account, region or "*"))
    return out


def _kms_grant(kms_key: str, account: str, region: str) -> Grant:
    """Data keys of the state's KMS key, used through S3 only. An alias is matched by
    `kms:ResourceAliases` (IAM evaluates the key's ARN, never the alias's)."""
    via: dict[str, dict[str, str | list[str]]] = {
        "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}
    }
    if kms_key.startswith("arn:"):
        resource = kms_key
    elif kms_key.startswith("alias/"):
        resource = f"arn:aws:kms:{region}:{account}:key/*"
        via["ForAnyValue:StringEquals"] = {"kms:ResourceAliases": [kms_key]}
    else:
        resource = f"arn:aws:kms:{region}:{account}:key/{kms_key}"
    return Grant("RunStateKmsKey", ("kms:GenerateDataKey", "kms:Decrypt"), (resource,), via)
