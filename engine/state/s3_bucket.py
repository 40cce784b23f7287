"""The state bucket must keep every version (a checkpoint overwritten by mistake can be got
back) and must not be public; each is checked before a run uses it, refused in one line.

Public, as S3 itself decides it: a bucket policy that GetBucketPolicyStatus reports public
(unless a public access block restricts public buckets), or an ACL granting AllUsers or
AuthenticatedUsers (unless a block ignores public ACLs). A block is the bucket's own or the
account's (S3 Control), whichever is stricter; the account's is read only when the bucket's
own settings look public, and an account block that cannot be read counts as none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from engine.state.errors import JournalError

PUBLIC_GROUPS = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


def public_reasons(policy_public: bool, acl_grants: list[dict[str, Any]], block: dict) -> list[str]:
    """Why a bucket is public (empty: it is not). `block`: its PublicAccessBlockConfiguration."""
    reasons = []
    if policy_public and not block.get("RestrictPublicBuckets"):
        reasons.append("its bucket policy is public")
    public_acl = [
        g.get("Permission", "?")
        for g in acl_grants
        if g.get("Grantee", {}).get("URI") in PUBLIC_GROUPS
    ]
    if public_acl and not block.get("IgnorePublicAcls"):
        reasons.append(f"its ACL grants {', '.join(public_acl)} to everyone")
    return reasons


def stricter(*blocks: dict) -> dict:
    """Pure: each setting on where any block sets it."""
    return {k: True for block in blocks for k, v in block.items() if v}


def account_block(sts: Any, s3control: Any) -> dict:
    """The account's public access block (S3 Control); {} when there is none or it cannot be
    read (then only the bucket's own settings count: the check stays on the safe side)."""
    try:
        account = sts.get_caller_identity()["Account"]
        answer = s3control.get_public_access_block(AccountId=account)
    except (ClientError, BotoCoreError):
        return {}
    return dict(answer.get("PublicAccessBlockConfiguration", {}))


def check_state_bucket(
    client: Any, bucket: str, account_settings: Callable[[], dict] | None = None
) -> None:
    """Refuse (JournalError, one line) a bucket without versioning, or a public one.
    `account_settings`: the account's public access block, read only when needed."""
    where = f"s3://{bucket}"
    try:
        status = client.get_bucket_versioning(Bucket=bucket).get("Status")
        policy_public = _policy_public(client, bucket)
        grants = client.get_bucket_acl(Bucket=bucket).get("Grants", [])
        block = _public_access_block(client, bucket)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise JournalError(
            f"state bucket {where}: {error.get('Code', '?')} {error.get('Message', '')}".strip()
        ) from None
    except BotoCoreError as exc:
        raise JournalError(f"state bucket {where} cannot be reached: {exc}") from None
    if status != "Enabled":
        raise JournalError(
            f"state bucket {where} does not keep versions (versioning {status or 'never set'}); "
            f"refusing to keep a run there: aws s3api put-bucket-versioning --bucket {bucket} "
            "--versioning-configuration Status=Enabled"
        )
    reasons = public_reasons(policy_public, grants, block)
    if reasons and account_settings is not None:
        reasons = public_reasons(policy_public, grants, stricter(block, account_settings()))
    if reasons:
        raise JournalError(
            f"state bucket {where} is public ({'; '.join(reasons)}); refusing to keep a run there"
        )


def _policy_public(client: Any, bucket: str) -> bool:
    try:
        return bool(client.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]["IsPublic"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucketPolicy":
            return False
        raise


def _public_access_block(client: Any, bucket: str) -> dict:
    try:
        answer = client.get_public_access_block(Bucket=bucket)
        return dict(answer.get("PublicAccessBlockConfiguration", {}))
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchPublicAccessBlockConfiguration":
            return {}
        raise
