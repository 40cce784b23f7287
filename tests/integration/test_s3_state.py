"""A journal kept in S3, against a moto server on loopback: checkpoints with If-Match, the lock
with If-None-Match, the bucket checks, encryption, a held checkpoint, the pull to a second home."""

from __future__ import annotations

import fnmatch
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto import mock_aws

from engine.actions.migrate.ledger import Ledger
from engine.aws import iam_policy
from engine.aws.state_policy import STATE_CALLS, state_grants
from engine.core.events import LogLine, SnapshotChanged
from engine.core.views import RunState
from engine.plan.loader import default_runbook_path, load_runbook
from engine.run.core import EngineOptions
from engine.run.engine import Engine
from engine.state.errors import JournalError
from engine.state.journal import Journal, RunMeta, Target
from engine.state.lock import LockedError
from engine.state.s3_bucket import account_block, check_state_bucket
from engine.state.s3_journal import S3JournalStore
from engine.state.s3_location import S3Location, parse_s3_url
from engine.state.s3_lock import S3Lock, s3_holder
from engine.state.s3_objects import StateObjects
from tests.support.world import fresh_moto_server
from tui.app import RunbookApp
from tui.lines import status_text

DEAD = "http://127.0.0.1:9"  # discard port: nothing listens, the connection is refused


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with fresh_moto_server() as url:
        yield url


def _client(url: str, **config: Any) -> Any:
    return boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
        config=Config(**config) if config else None,
    )  # fmt: skip


@pytest.fixture
def s3(server: str) -> Any:
    return _client(server)


@pytest.fixture
def location(s3: Any) -> S3Location:
    bucket = f"state-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return parse_s3_url(f"s3://{bucket}/runs/acme/run.toml")


def _journal() -> Journal:
    rb = load_runbook(default_runbook_path()).runbook
    run = RunMeta(
        runbook_id=rb.runbook.id, runbook_sha256="0" * 64, operator="alice",
        target=Target(kind="endpoint", identity="x", region="us-east-1"),
        started_at="2026-12-06T10:00:00Z", migration_ts="2026-12-06T10:00:00Z",
    )  # fmt: skip
    return Journal(run=run)


def _store(s3: Any, location: S3Location, home: Path, kms: str | None = None) -> S3JournalStore:
    objects = StateObjects(s3, location.bucket, kms)
    return S3JournalStore(location, objects, location.cache_path(home))


def test_every_checkpoint_replaces_the_version_it_read(
    s3: Any, location: S3Location, tmp_path: Path
) -> None:
    sent: list[dict[str, Any]] = []
    s3.meta.events.register(
        "before-call.s3.PutObject", lambda params, **_: sent.append(dict(params["headers"]))
    )
    store = _store(s3, location, tmp_path)
    journal = _journal()
    store.save(journal)
    first = store.etag
    journal.add_audit("alice", "one")
    store.save(journal)
    puts = [h for h in sent if "If-Match" in h or "If-None-Match" in h]
    assert puts[0]["If-None-Match"] == "*"  # the first write creates, never replaces
    assert puts[-1]["If-Match"] == first
    assert store.etag != first
    again = _store(s3, location, tmp_path / "elsewhere").load()
    assert again.audit[-1].what == "one"


def test_a_checkpoint_written_behind_the_drivers_back_stops_it_and_nothing_is_overwritten(
    s3: Any, location: S3Location, tmp_path: Path
) -> None:
    driver = _store(s3, location, tmp_path / "a")
    journal = _journal()
    driver.save(journal)
    other = _store(s3, location, tmp_path / "b")
    theirs = other.load()
    theirs.add_audit("bob", "behind your back")
    other.save(theirs)
    behind = s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read()

    journal.add_audit("alice", "mine")
    with pytest.raises(JournalError) as info:
        driver.save(journal)
    message = str(info.value)
    assert "\n" not in message and "412" in message and "another writer" in message
    assert "without overwriting" in message
    assert s3.get_object(Bucket=location.bucket, Key=location.key)["Body"].read() == behind


def test_a_retried_put_whose_answer_was_lost_is_known_as_ours(
    s3: Any, location: S3Location, tmp_path: Path
) -> None:
    store = _store(s3, location, tmp_path)
    journal = _journal()
    store.save(journal)
    stale = store.etag
    journal.add_audit("alice", "checkpoint")
    store.save(journal)  # S3 took it; say its answer never came back
    taken = store.etag
    store.etag = stale
    store.save(journal)  # the retry: 412, but S3 holds exactly these bytes, so it was ours
    assert store.etag == taken != stale


def test_one_lock_holder_a_second_driver_is_told_who_and_take_over_is_explicit(
    s3: Any, location: S3Location
) -> None:
    objects = StateObjects(s3, location.bucket)
    first = S3Lock(objects, location, "run")
    first.acquire()
    with pytest.raises(LockedError) as info:
        S3Lock(objects, location, "decide").acquire()
    holder = info.value.holder
    assert holder is not None and holder.operation == "run" and holder.pid > 0
    assert "--take-over" in str(info.value) and "held for" in str(info.value)

    taker = S3Lock(objects, location, "run", take_over=True)
    taker.acquire()
    assert taker.taken_from == holder
    first.release()  # the old holder lets go: the taker's lock stays
    assert s3_holder(objects, location) is not None
    taker.release()
    assert s3_holder(objects, location) is None
    S3Lock(objects, location, "run").acquire()  # free again (a delete marker is no object)


def test_two_drivers_at_once_exactly_one_holds(s3: Any, location: S3Location) -> None:
    objects = StateObjects(s3, location.bucket)
    start = threading.Barrier(2)
    won: list[str] = []
    refused: list[str] = []

    def drive(name: str) -> None:
        start.wait()
        try:
            S3Lock(objects, location, name).acquire()
            won.append(name)
        except LockedError as exc:
            refused.append(str(exc))

    threads = [threading.Thread(target=drive, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(refused) == 1
    assert f"running '{won[0]}'" in refused[0]


def test_the_bucket_must_keep_versions_and_not_be_public(s3: Any) -> None:
    bucket = f"state-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    with pytest.raises(JournalError, match="does not keep versions"):
        check_state_bucket(s3, bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    with pytest.raises(JournalError, match="versioning Suspended"):
        check_state_bucket(s3, bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    check_state_bucket(s3, bucket)
    s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
    with pytest.raises(JournalError, match=r"is public \(its ACL grants READ"):
        check_state_bucket(s3, bucket)
    s3.put_bucket_acl(Bucket=bucket, ACL="private")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
                       "Resource": f"arn:aws:s3:::{bucket}/*"}],
    }  # fmt: skip
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    with pytest.raises(JournalError, match="its bucket policy is public"):
        check_state_bucket(s3, bucket)
    with pytest.raises(JournalError, match="NoSuchBucket"):
        check_state_bucket(s3, "no-such-state-bucket")


def test_a_public_acl_the_accounts_block_ignores_is_not_public() -> None:
    """The account's public access block (S3 Control) counts as the bucket's own would: an ACL
    grant it ignores makes no bucket public. Read only when the bucket looks public. (In
    process: S3 Control's endpoint puts the account id in the host name, which a moto server
    on loopback cannot answer.)"""
    with mock_aws():
        session = boto3.Session(
            region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        s3, sts, control = (session.client(n) for n in ("s3", "sts", "s3control"))
        account = sts.get_caller_identity()["Account"]
        bucket = "state-account-block"
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_acl(Bucket=bucket, ACL="public-read")
        reads: list[str] = []

        def read() -> dict:
            reads.append("read")
            return account_block(sts, control)

        with pytest.raises(JournalError, match="its ACL grants READ"):
            check_state_bucket(s3, bucket, read)  # no account block: public
        control.put_public_access_block(
            AccountId=account,
            PublicAccessBlockConfiguration={
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        )
        check_state_bucket(s3, bucket, read)  # the account's block ignores the grant
        assert reads == ["read", "read"]
        s3.put_bucket_acl(Bucket=bucket, ACL="private")
        check_state_bucket(s3, bucket, read)
        assert reads == ["read", "read"]  # nothing looked public: the account was not asked


def test_files_are_encrypted_sse_s3_by_default_and_kms_on_request(
    s3: Any, location: S3Location, tmp_path: Path
) -> None:
    store = _store(s3, location, tmp_path)
    store.save(_journal())
    head = s3.head_object(Bucket=location.bucket, Key=location.key)
    assert head["ServerSideEncryption"] == "AES256"
    kms = _store(s3, location, tmp_path / "kms", kms="alias/state")
    journal = kms.load()
    kms.save(journal)
    head = s3.head_object(Bucket=location.bucket, Key=location.key)
    assert head["ServerSideEncryption"] == "aws:kms"


def test_unreachable_s3_holds_the_checkpoint_until_it_answers(
    server: str, s3: Any, location: S3Location, tmp_path: Path
) -> None:
    store = _store(_client(DEAD, retries={"max_attempts": 1}), location, tmp_path)
    store.hold_delays = (0.0,)
    said: list[str] = []

    def on_hold(message: str) -> None:
        said.append(message)
        if len(said) == 3:  # S3 answers again after three held tries
            store.objects.client = s3

    store.on_hold = on_hold
    store.save(_journal())
    assert len(said) == 3
    assert all("checkpoint held" in m and "S3 unreachable" in m for m in said)
    assert s3.head_object(Bucket=location.bucket, Key=location.key)["ContentLength"] > 0


def test_a_stop_ends_a_held_checkpoint_without_writing(
    location: S3Location, tmp_path: Path
) -> None:
    store = _store(_client(DEAD, retries={"max_attempts": 1}), location, tmp_path)
    store.hold_delays = (0.0,)
    stop = threading.Event()
    store.bind_stop(stop)
    store.on_hold = lambda message: stop.set()
    with pytest.raises(JournalError) as info:
        store.save(_journal())
    assert "checkpoint not written" in str(info.value) and "\n" not in str(info.value)
    assert not store.path.exists()  # nothing went on without a durable checkpoint


def test_log_and_artifacts_reach_s3_and_come_back_in_a_second_home(
    s3: Any, location: S3Location, tmp_path: Path
) -> None:
    first = _store(s3, location, tmp_path / "home1")
    journal = _journal()
    first.artifacts_dir.mkdir(parents=True)
    (first.artifacts_dir / "archive-x").mkdir()
    (first.artifacts_dir / "archive-x" / "items.jsonl").write_text('{"a": 1}\n')
    first.log_path.write_text("line 1\n")
    first.save(journal)
    with first.log_path.open("a") as fh:
        fh.write("line 2\n")
    first.save(journal)
    first.save(journal)  # nothing new: no new part
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=location.bucket)["Contents"]]
    assert location.artifacts_prefix + "archive-x/items.jsonl" in keys
    assert [k for k in keys if k.startswith(location.log_prefix)] == [
        location.log_part(0),
        location.log_part(1),
    ]

    second = _store(s3, location, tmp_path / "home2")
    second.pull()
    assert second.load().run.operator == "alice"
    assert second.log_path.read_text() == "line 1\nline 2\n"
    assert (second.artifacts_dir / "archive-x" / "items.jsonl").read_text() == '{"a": 1}\n'
    with second.log_path.open("a") as fh:
        fh.write("line 3\n")
    second.save(second.load())
    third = _store(s3, location, tmp_path / "home3")
    third.pull()
    assert third.log_path.read_text() == "line 1\nline 2\nline 3\n"


def test_a_ledger_written_during_checkpoints_reaches_a_second_home_whole(
    s3: Any, location: S3Location, tmp_path: Path
) -> None:
    """The migrate ledger is written by segment threads between checkpoints: S3 gets its last
    commit as a database of its own (never its WAL, never a torn file), and a second home's
    resume opens it, with a stale WAL of its own dropped."""
    first = _store(s3, location, tmp_path / "home1")
    first.artifacts_dir.mkdir(parents=True)
    ledger = Ledger(first.artifacts_dir / "migrate-expenses.sqlite", fresh=True)
    ledger.quarantine("k1", "too big", {"n": 1})
    ledger.db.commit()
    ledger.quarantine("k2", "too big", {"n": 2})  # under way at the checkpoint
    first.save(_journal())
    ledger.db.commit()
    first.save(_journal())  # the commit reached only the WAL: sent again all the same
    ledger.quarantine("k3", "too big", {"n": 3})  # never committed before the crash
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=location.bucket)["Contents"]]
    sent = [k for k in keys if k.startswith(location.artifacts_prefix)]
    assert sent == [location.artifacts_prefix + "migrate-expenses.sqlite"]

    second = _store(s3, location, tmp_path / "home2")
    second.artifacts_dir.mkdir(parents=True)
    (second.artifacts_dir / "migrate-expenses.sqlite-wal").write_bytes(b"from another run")
    second.pull()
    resumed = Ledger(second.artifacts_dir / "migrate-expenses.sqlite", fresh=False)
    assert resumed.count("quarantine") == 2 and resumed.is_quarantined("k2")
    assert not resumed.is_quarantined("k3")
    resumed.close()
    ledger.close()


def test_a_watcher_follows_with_conditional_gets(
    s3: Any, location: S3Location, tmp_path: Path
) -> None:
    driver = _store(s3, location, tmp_path / "driver")
    journal = _journal()
    driver.save(journal)
    answers: list[int] = []
    conditional: list[bool] = []
    watcher_client = _client(s3.meta.endpoint_url)
    watcher_client.meta.events.register(
        "before-call.s3.GetObject",
        lambda params, **_: conditional.append("If-None-Match" in params["headers"]),
    )
    watcher_client.meta.events.register(
        "after-call.s3.GetObject",
        lambda http_response, **_: answers.append(http_response.status_code),
    )
    watcher = _store(watcher_client, location, tmp_path / "watcher")
    assert watcher.load().audit == []
    assert watcher.load().audit == []  # unchanged: a 304, the copy read last
    journal.add_audit("alice", "moved on")
    driver.save(journal)
    assert watcher.load().audit[-1].what == "moved on"
    assert conditional == [False, True, True]
    assert answers == [200, 304, 200]  # the middle read: Not Modified, no body


def test_the_iam_policy_grants_every_state_call_and_nothing_wider(
    s3: Any, location: S3Location, tmp_path: Path
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    s3.meta.events.register(
        "provide-client-params.s3.*",
        lambda params, model, **_: calls.append((model.name, dict(params))),
    )
    check_state_bucket(s3, location.bucket)
    lock = S3Lock(StateObjects(s3, location.bucket), location, "run")
    lock.acquire()
    store = _store(s3, location, tmp_path / "a")
    store.exists()
    store.artifacts_dir.mkdir(parents=True)
    (store.artifacts_dir / "quarantine.jsonl").write_text("{}\n")
    store.log_path.write_text("one line\n")
    store.save(_journal())
    second = _store(s3, location, tmp_path / "b")
    second.pull()
    second.load()
    lock.release()

    rb = load_runbook(default_runbook_path()).runbook
    grants = state_grants(location, None, "123456789012", "us-east-1")
    policy = iam_policy.build_policy(rb, "123456789012", "us-east-1", grants)
    assert {name for name, _ in calls} == set(STATE_CALLS)
    for name, params in calls:
        resource = f"arn:aws:s3:::{params['Bucket']}"
        if "Key" in params:
            resource += f"/{params['Key']}"
        assert iam_policy.allows(policy, STATE_CALLS[name], resource), (name, params)
        if name == "ListObjectsV2":  # listing only under the state's own keys
            listed = next(g for g in grants if g.sid == "RunStateList").condition
            assert listed is not None
            patterns = listed["StringLike"]["s3:prefix"]
            assert any(fnmatch.fnmatchcase(params["Prefix"], p) for p in patterns), params
    bucket = f"arn:aws:s3:::{location.bucket}"
    for other in (f"{bucket}/runs/acme/other.toml", f"{bucket}/elsewhere/run.toml"):
        assert not iam_policy.allows(policy, "s3:PutObject", other)
        assert not iam_policy.allows(policy, "s3:GetObject", other)
    elsewhere = f"arn:aws:s3:::another-bucket/{location.key}"
    assert not iam_policy.allows(policy, "s3:PutObject", elsewhere)


def test_a_held_checkpoint_holds_the_step_and_every_view_says_so(
    s3: Any, location: S3Location, tmp_path: Path
) -> None:
    rb = load_runbook(default_runbook_path()).runbook
    store = _store(_client(DEAD, retries={"max_attempts": 1}), location, tmp_path)
    store.hold_delays = (0.0,)
    engine = Engine(rb, _journal(), store, lambda service: None, EngineOptions(operator="alice"))
    seen: list[Any] = []

    def watch(event: Any) -> None:
        seen.append(event)
        if isinstance(event, SnapshotChanged) and event.snapshot.checkpoint_held:
            store.objects.client = s3  # S3 answers again

    engine.subscribe(watch)
    engine.save()
    held = [e.snapshot for e in seen if isinstance(e, SnapshotChanged)]
    assert held[0].checkpoint_held and "S3 unreachable" in held[0].checkpoint_held
    assert held[-1].checkpoint_held is None  # durable: the run goes on
    line = status_text(held[0].model_copy(update={"state": RunState.RUNNING}), False, False)
    assert "HOLDING" in line and "S3 unreachable" in line
    warnings = [e for e in seen if isinstance(e, LogLine) and e.level == "warning"]
    assert warnings and "checkpoint held" in warnings[0].message
    assert s3.head_object(Bucket=location.bucket, Key=location.key)["ContentLength"] > 0


async def test_a_read_only_console_names_the_driver_from_the_s3_lock(
    s3: Any, location: S3Location, tmp_path: Path
) -> None:
    """The S3 journal's driver holds the lock object in S3, not a lock file here: the console's
    top bar follows that object as drivers come and go."""
    rb = load_runbook(default_runbook_path()).runbook
    store = _store(s3, location, tmp_path)
    store.save(_journal())
    engine = Engine(rb, store.load(), store, lambda service: None, EngineOptions(operator="carol"))
    objects = StateObjects(s3, location.bucket)
    app = RunbookApp(
        engine,
        read_only=True,
        greet=False,
        follow=lambda engine: None,
        who_drives=lambda: s3_holder(objects, location),
    )
    async with app.run_test(size=(80, 24)) as pilot:
        topbar = app.query_one("#topbar")
        assert "nobody drives" in str(topbar.render())
        other = S3Lock(objects, location, "run")
        other.acquire()  # a driver on another machine
        app.follow_driver()
        await pilot.pause()
        holder = s3_holder(objects, location)
        assert holder is not None
        assert f"driven by {holder.user}@{holder.host}" in str(topbar.render())
        other.release()
        app.follow_driver()
        await pilot.pause()
        assert "nobody drives" in str(topbar.render())
