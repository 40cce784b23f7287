"""The STS identity of credentials: this process's own (GetCallerIdentity with the target's
clients), or a caller's through a signed proof a detached engine replays (the pattern of
aws-iam-authenticator and Vault's AWS auth: the caller signs an sts:GetCallerIdentity request
and never sends its keys; the engine sends that request to STS itself and reads the answer).

A proof is a signature valid for a few minutes for one harmless call; it is never journaled,
logged or shown.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlparse
from xml.etree import ElementTree

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest

from engine.core.commands import StsProof
from engine.state.identity import reduce_arn

PROOF_BODY = "Action=GetCallerIdentity&Version=2011-06-15"
PROOF_TIMEOUT = 10.0
_STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


class ProofRefused(Exception):
    """The proof is not a GetCallerIdentity request to the engine's STS, or STS refused it."""


def own_arn(sts: Any) -> str:
    """This process's credentials, as STS names them (a session reduced to its role)."""
    return reduce_arn(sts.get_caller_identity()["Arn"])


def make_proof(session: Any, sts: Any) -> StsProof | None:
    """Sign a GetCallerIdentity request to `sts`'s endpoint (None: no credentials here)."""
    credentials = session.get_credentials()
    if credentials is None:
        return None
    request = AWSRequest(
        method="POST",
        url=sts.meta.endpoint_url,
        data=PROOF_BODY,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    SigV4Auth(credentials.get_frozen_credentials(), "sts", sts.meta.region_name).add_auth(request)
    return StsProof(url=sts.meta.endpoint_url, headers=dict(request.headers.items()))


def _same_endpoint(url: str, expected: str) -> bool:
    got, want = urlparse(url), urlparse(expected)
    return (got.scheme, got.netloc, got.path.rstrip("/")) == (
        want.scheme,
        want.netloc,
        want.path.rstrip("/"),
    )


def verify_proof(proof: StsProof, sts_endpoint: str, timeout: float = PROOF_TIMEOUT) -> str:
    """The caller's ARN (reduced), from the engine's own STS endpoint only: a proof aimed
    anywhere else could answer any ARN it likes."""
    if not _same_endpoint(proof.url, sts_endpoint):
        raise ProofRefused("the identity proof is not for this engine's STS endpoint")
    request = urllib.request.Request(
        sts_endpoint, data=PROOF_BODY.encode(), headers=proof.headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            body = answer.read(64 * 1024)
    except urllib.error.HTTPError as exc:
        raise ProofRefused(f"STS refused the identity proof (HTTP {exc.code})") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ProofRefused(f"STS could not be asked ({type(exc).__name__})") from None
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise ProofRefused("STS's answer is not XML") from None
    arn = root.find(f"{_STS_NS}GetCallerIdentityResult/{_STS_NS}Arn")
    if arn is None or not arn.text:
        raise ProofRefused("STS's answer names no caller")
    return reduce_arn(arn.text)
