"""Commands on this machine's journal: check | plan | run | status | tick | ack | decide |
rollback | report | iam-policy (with a detached engine running, it gets them)."""

from __future__ import annotations

import json

from engine.aws import iam_policy
from engine.aws.restore_policy import restore_grants
from engine.aws.state_policy import state_grants
from engine.aws.target import TargetError
from engine.cli.codes import EXIT_BAD_INPUT, EXIT_OK
from engine.cli.context import CliContext
from engine.cli.detached_commands import remote_rollback
from engine.cli.detached_run import run_detached_child, spawn_detached
from engine.cli.ending import finish_outcome
from engine.cli.output import Printer, say, say_error
from engine.cli.policy_inputs import day1_inventory, journaled_api_id
from engine.cli.remote import DrivenElsewhere, control_line, detached_line, engine_view
from engine.cli.terminal import install_stop_handlers, lost_terminal_stops, make_confirm
from engine.core.commands import EngineCommands
from engine.core.outcome import BadRequest
from engine.plan.calls import plan_calls
from engine.plan.loader import default_runbook_path, load_runbook
from engine.rehearsal.clock import clock_label, plan_wait_seconds
from engine.rehearsal.embedded import WorldGone
from engine.run.engine import Engine
from engine.run.report import render_report
from engine.run.snapshot import empty_snapshot
from engine.run.status_text import render_status
from engine.session.workspace import NoRun
from engine.state.s3_location import parse_s3_url


def cmd_check(ctx: CliContext) -> int:
    loaded = load_runbook(ctx.target.runbook or default_runbook_path())
    for problem in loaded.warnings:
        say(problem.render())
    rb = loaded.runbook
    say(
        f"{loaded.path}: ok: {len(rb.steps)} steps, {len(rb.gates)} gates, "
        f"{len(rb.rollbacks)} rollbacks, {len(loaded.warnings)} warning(s)"
    )
    return EXIT_OK


def cmd_plan(ctx: CliContext) -> int:
    loaded = load_runbook(ctx.target.runbook or default_runbook_path())
    rb = loaded.runbook
    for (kind, node_id), calls in plan_calls(rb):
        if kind == "gate":
            say(f"\nGATE {node_id}: {rb.gate(node_id).title}")
        else:
            step = rb.step(node_id)
            day = rb.day(rb.phase(step.phase).day)
            flag = " [destructive]" if step.destructive else ""
            say(f"\n{day.id} {step.slot} {step.phase} {node_id}: {step.title}{flag}")
        for call in calls:
            say(f"    {call.render()}")
    for problem in loaded.warnings:
        say(problem.render())
    return EXIT_OK


def cmd_run(ctx: CliContext) -> int:
    args = ctx.args
    if args.only and args.until:
        raise BadRequest("--only runs one step; it cannot be combined with --until")
    if ctx.remote is not None:
        raise DrivenElsewhere(detached_line(ctx, ctx.remote))
    if ctx.detached_child:
        return run_detached_child(ctx)
    if args.detach:
        return spawn_detached(ctx)
    if ctx.throttle:
        raise BadRequest(
            "--rate, --in-flight, --segments and --capacity-share start a detached engine "
            "throttled: add "
            "--detach (a foreground run has no throttle; a detached one takes `runbook throttle` "
            "and the attached console's `t`)"
        )

    def body(engine: Engine) -> int:

        scale = engine.journal.run.time_scale
        waits = plan_wait_seconds(engine.runbook) / scale / 60.0
        say(f"clock: {clock_label(scale)} (the plan's waits take about {waits:,.0f} min)")
        engine.subscribe(Printer(lost_terminal_stops(engine)))
        install_stop_handlers(engine)
        gaps = lambda: tuple(  # noqa: E731 - read when a deletion asks, not before
            f"archive incomplete: {gap}" for gap in engine.snapshot().archive_gaps
        )
        outcome = engine.run(until=args.until, only=args.only, confirm=make_confirm(args.yes, gaps))
        return finish_outcome(outcome, ctx.resume_hint(), engine.snapshot())

    return ctx.drive("run", body)


def cmd_status(ctx: CliContext) -> int:
    """The run's snapshot: as JSON (`--json`, the same object the console renders) or as text."""

    ws = ctx.workspace()
    try:
        engine = ws.open_read_only()
    except NoRun:  # before any run: every step pending
        snapshot = empty_snapshot(ws.loaded.runbook, str(ws.store.path))
    else:
        holder = ws.holder()  # a run in S3: whoever holds its lock, on any machine
        running = any(s.status == "running" for s in engine.journal.steps.values())
        snapshot = engine.snapshot(
            driver=f"{holder.user}@{holder.host}" if holder else None,
            active=holder is not None and running,
        )
    control, live = engine_view(ctx)  # detach: a detached engine's own state, if one runs
    if live is not None:  # its live snapshot: running, with items/s and ETA
        snapshot = live
    if ctx.args.json:
        if control is None:
            say(snapshot.model_dump_json(indent=2))
        else:
            engine_state = control.model_dump(mode="json")
            data = {**json.loads(snapshot.model_dump_json()), "engine": engine_state}
            say(json.dumps(data, indent=2))
        return EXIT_OK
    if control is not None:
        say(control_line(control))
    for line in render_status(snapshot):
        say(line)
    return EXIT_OK


def cmd_tick(ctx: CliContext) -> int:
    args = ctx.args
    if ctx.remote is not None:
        ctx.remote.tick(args.gate, args.item, args.by, args.note, ctx.caller())
        say(f"{args.gate}/{args.item}: ticked by {args.by} (through the detached engine)")
        return EXIT_OK

    def body(engine: Engine) -> int:
        engine.tick(args.gate, args.item, args.by, args.note, ctx.caller())
        say(f"{args.gate}/{args.item}: ticked by {args.by}")
        return EXIT_OK

    return ctx.drive("tick", body)


def cmd_ack(ctx: CliContext) -> int:
    args = ctx.args
    if ctx.remote is not None:
        ctx.remote.ack(args.step, args.by, args.note, ctx.caller())
        say(f"{args.step}: acknowledged by {args.by}; the detached engine continues")
        return EXIT_OK

    def body(engine: Engine) -> int:
        engine.ack(args.step, args.by, args.note, ctx.caller())
        say(f"{args.step}: acknowledged by {args.by}; `runbook run` continues")
        return EXIT_OK

    return ctx.drive("ack", body)


def cmd_decide(ctx: CliContext) -> int:
    args = ctx.args

    def decide(engine: EngineCommands) -> int:
        evidence = engine.decide(
            args.gate,
            go=args.go,
            by=args.by,
            note=args.note,
            override=args.override,
            caller=ctx.caller(),
        )
        for item, ev in evidence.items():
            say(f"  [{'x' if ev.ok else ' '}] {item}: {ev.detail}")
        say(f"{args.gate}: {'GO' if args.go else 'NO-GO'} recorded by {args.by}")
        return EXIT_OK

    if ctx.remote is not None:
        return decide(ctx.remote)
    return ctx.drive("decide", decide)


def cmd_rollback(ctx: CliContext) -> int:
    args = ctx.args
    if ctx.remote is not None:
        return remote_rollback(ctx, ctx.remote)

    def body(engine: Engine) -> int:
        for line in engine.preview_rollback(args.phase).lines():
            say(line)
        if args.preview:
            return EXIT_OK
        engine.subscribe(Printer(lost_terminal_stops(engine)))
        install_stop_handlers(engine)
        by = ctx.by or engine.options.operator
        outcome = engine.rollback(args.phase, by, make_confirm(args.yes), ctx.caller())
        return finish_outcome(outcome, ctx.resume_hint())

    return ctx.drive("rollback", body)


def cmd_report(ctx: CliContext) -> int:

    ws = ctx.workspace()
    engine = ws.open_read_only()
    try:
        live = ws.open_read_only(connected=True)
        clients = live.clients
    except (WorldGone, TargetError) as exc:
        say_error(f"note: target not reachable ({exc}); the report uses the journal only")
        clients = None
    say(render_report(engine, clients))
    return EXIT_OK


def cmd_iam_policy(ctx: CliContext) -> int:

    rb = load_runbook(ctx.target.runbook or default_runbook_path()).runbook
    state = None
    journal = ctx.target.journal
    if isinstance(journal, str):  # an S3 journal: its keys too, nothing wider
        location = parse_s3_url(journal)
        kms_key, region = ctx.target.state_kms_key, ctx.target.region
        state = state_grants(location, kms_key, ctx.args.account, region)
    path, needs = day1_inventory(ctx, rb)
    if needs is not None:
        region = ctx.target.region or rb.runbook.region
        state = [*(state or []), *restore_grants(needs, ctx.args.account, region)]
    elif path is not None:
        say_error(
            f"note: no Day 1 inventory at {path}: iam:PassRole (on the deprecated functions' "
            "roles), their KMS keys, layers and VPC reads are left out; run the inventory "
            "step, then print the policy again before Phase 5"
        )
    api_id = journaled_api_id(ctx, rb)
    if rb.inventory.api is not None and not (api_id or rb.inventory.api.id):
        say_error(
            "note: the REST API is not resolved yet (Day 1's inventory journals its id): the "
            "API Gateway grants cover every REST API of the region; print the policy again "
            "after the inventory step, or pin the id in the runbook ([inventory.api] id)"
        )
    print(iam_policy.render(rb, ctx.args.account, ctx.target.region, state, api_id))
    return EXIT_OK


def cmd_console(ctx: CliContext) -> int:
    """Without a command the console opens; it lives above the engine (`runbook_entry`)."""
    if ctx.command is not None:  # serve / view: the console's, through the `runbook` command
        say_error(
            f"runbook: {ctx.command} belongs to the console; run it as `runbook {ctx.command}`"
        )
        return EXIT_BAD_INPUT
    say_error("runbook: the console opens with the `runbook` command (no sub-command); see --help")
    return EXIT_BAD_INPUT
