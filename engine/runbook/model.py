"""The runbook as data: pydantic models of `runbooks/*.toml`.

Structure only; semantic cross-checks (missing phases, unknown actions) live in `loader.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from engine.runbook.approvers import pattern_problem
from engine.runbook.selector import Selector

StepKind = Literal["action", "manual", "wait"]
# Ids name files (artifacts, archives) and appear in commands: one path component, no spaces.
SAFE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$"
SafeId = Annotated[str, StringConstraints(pattern=SAFE_ID_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bound(Strict):
    """A node with `params` for an action or a check: the loader validates them once against
    that model and binds the result here; the engine reads `bound`, never the raw table."""

    _bound: BaseModel | None = PrivateAttr(default=None)

    @property
    def bound(self) -> Any:
        """The params as the model of its action or check (set by `engine.plan.loader`)."""
        if self._bound is None:
            raise LookupError("its params were not bound: load the runbook with load_runbook")
        return self._bound

    @property
    def is_bound(self) -> bool:
        return self._bound is not None

    def bind(self, params: BaseModel) -> None:
        self._bound = params

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with other params is unbound: the loader's binding was for these."""
        copy = super().model_copy(update=update, deep=deep)
        if update and "params" in update:
            copy._bound = None
        return copy


class TableSpec(Strict):
    name: str
    group: str  # e.g. multi-table, company, supporting, production
    items: int = 0
    size_bytes: int = 0
    status: str = ""
    deprecate: bool = False
    partition_key: str
    sort_key: str | None = None
    gsi: list[str] = []


class FunctionSpec(Strict):
    name: str
    group: str
    deprecate: bool = False
    read_heavy: bool = False
    table: str | None = None  # the table the function reads/writes


class RouteSpec(Strict):
    path: str
    methods: list[str]
    functions: list[str] = []
    deprecate: bool = False


class ApiSpec(Strict):
    name: str
    stage: str = "prod"
    # REST API names are not unique: pin the API's id when more than one of this name has
    # `stage` (Day 1 refuses to guess, and lists them)
    id: str | None = None
    routes: list[RouteSpec] = []


class CostModel(Strict):
    table_monthly: float
    function_monthly: float
    log_group_monthly: float
    api_monthly: float


class Inventory(Strict):
    tables: list[TableSpec]
    functions: list[FunctionSpec] = []
    log_group_prefix: str = "/aws/lambda/"
    extra_log_groups: list[str] = []
    api: ApiSpec | None = None
    cost: CostModel | None = None

    def select_tables(self, selector: str) -> list[str]:
        """`@all`, `@group:NAME`, `@deprecated`, or a literal table name."""
        return Selector.parse(selector).pick(self.tables)

    def select_functions(self, selector: str) -> list[str]:
        return Selector.parse(selector).pick(self.functions)

    def log_groups(self) -> list[str]:
        return [self.log_group_prefix + f.name for f in self.functions] + self.extra_log_groups


class EntitySpec(Strict):
    """One legacy entity table and its company-scoped twin."""

    name: SafeId
    source: str
    target: str
    id_attr: str
    user_attr: str = "userId"
    company_attr: str = "companyId"
    required: dict[str, Literal["string", "number", "bool", "map", "list"]] = {}
    relations: dict[str, str] = {}  # attribute -> entity name it points at
    sum_attr: str | None = None
    date_attr: str | None = None


class MappingSpec(Strict):
    company_users_table: str
    companies_table: str
    legacy_users_table: str
    user_attr: str = "userId"
    company_attr: str = "companyId"
    orphan_company_prefix: str = "comp-migrated-"
    orphan_company_name: str = "{user} (migrated)"


class FlagSpec(Strict):
    dual_write: str = "DUAL_WRITE_ENABLED"
    read_company_scoped: str = "READ_FROM_COMPANY_SCOPED"
    multi_table_deprecated: str = "MULTI_TABLE_DEPRECATED"
    read_percent: str = "READ_PERCENT"
    functions: list[str] = []  # rollout order; read-heavy first

    def names(self) -> list[str]:
        return [
            self.dual_write,
            self.read_company_scoped,
            self.multi_table_deprecated,
            self.read_percent,
        ]


class MonitoringSpec(Strict):
    namespace: str = "RunbookConsole/Migration"
    dashboard: str = "construction-expenses-migration"
    alarm_prefix: str = "construction-expenses-migration-"
    period_seconds: int = 300
    latency_statistic_aws: str = "p99"
    latency_statistic_embedded: str = "Average"
    sample_size: int = 50
    # an error signal (or a latency reading) with fewer requests in its window says nothing yet
    min_requests: int = Field(default=20, ge=1)
    # a latency or error trigger fires after this many readings in a row over its threshold
    # (fewer when the window holds fewer readings: a compressed rehearsal's has one)
    consecutive_readings: int = Field(default=3, ge=1)
    # after a shift or a new version, cold starts: latency readings start this late into a
    # watch, and read only what came after (at least one period, so no reading mostly
    # measures the time before the change)
    warmup_minutes: float = Field(default=10.0, ge=0)

    @model_validator(mode="after")
    def _warmup_covers_a_period(self) -> MonitoringSpec:
        if 0 < self.warmup_minutes * 60 < self.period_seconds:
            raise ValueError(
                f"monitoring.warmup_minutes ({self.warmup_minutes:g}) is shorter than one "
                f"period ({self.period_seconds} s): the first reading would mostly measure the "
                "time before the change; make it 0 or at least one period"
            )
        return self

    # what the application publishes for dual-write (namespace above): names and dimensions
    dual_write_success_metric: str = "DualWriteSuccess"
    dual_write_failure_metric: str = "DualWriteFailure"
    dual_write_dimensions: dict[str, str] = {}


class CapacitySpec(Strict):
    """The migration's share of its tables' capacity (docs/performance.md, issue 21)."""

    # of each table's write units on the target and read units on the source scans: provisioned
    # units, or an on-demand table's maximum (OnDemandThroughput, else WarmThroughput)
    share: float = Field(default=0.5, gt=0, le=1)
    # on-demand tables with neither a maximum nor warm throughput: the units per second the
    # operator grants the migration (None: unbounded, and the log says so)
    on_demand_write_units: float | None = Field(default=None, gt=0)
    on_demand_read_units: float | None = Field(default=None, gt=0)
    # one partition (one company: the target's partition key) serves about this many WCU/s;
    # the migration takes `share` of it per company
    partition_write_units: float = Field(default=1000.0, gt=0)
    # the tables' capacity is read again this often (auto scaling, an operator's UpdateTable)
    describe_seconds: float = Field(default=5.0, gt=0)
    # CloudWatch throttle metrics are one-minute sums, read this often; each minute acts once
    poll_seconds: float = Field(default=15.0, gt=0)
    # the baseline: these minutes before the step began
    baseline_minutes: int = Field(default=10, ge=1)
    # every poll without a rise gives back this share of the budget (additive increase)
    recover_step: float = Field(default=0.1, gt=0, le=1)
    # the step summary lists this many hottest companies
    hottest_companies: int = Field(default=5, ge=0, le=50)


class RuntimeLifecycle(Strict):
    """A Lambda runtime's deprecation schedule (AWS's deprecated-runtimes table), as data: once
    `block_create` has passed, CreateFunction on it fails, so a deleted function on it cannot
    come back as it was (engine/runbook/runtimes.py)."""

    name: str  # the runtime identifier, e.g. "python3.8"
    deprecated: str  # ISO dates (YYYY-MM-DD)
    block_create: str
    block_update: str = ""


class Day(Strict):
    id: SafeId
    title: str
    offset_days: int  # day N of the migration, 0-based


class Phase(Strict):
    id: SafeId
    day: str
    title: str
    description: str = ""


class Step(Bound):
    id: SafeId
    phase: str
    title: str
    slot: str  # "HH:MM-HH:MM" on the phase's day
    kind: StepKind = "action"
    action: str | None = None
    params: dict[str, Any] = {}
    instructions: str = ""
    destructive: bool = False
    requires_gate: str | None = None  # destructive steps name the GO they depend on

    @property
    def slot_start(self) -> str:
        return self.slot.split("-")[0]

    @property
    def slot_end(self) -> str:
        return self.slot.split("-")[1]


class GateItem(Bound):
    id: SafeId
    text: str
    kind: Literal["auto", "manual"]
    check: str | None = None  # name of an engine check, for kind = auto
    params: dict[str, Any] = {}
    # who may tick it (a manual item): role ARNs or os:NAME (engine/runbook/approvers.py);
    # empty: anyone who can reach the run
    approvers: list[str] = []

    @field_validator("approvers")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        problems = [p for p in map(pattern_problem, value) if p]
        if problems:
            raise ValueError("; ".join(problems))
        return value


class Gate(Strict):
    id: SafeId
    title: str
    before_phase: str | None = None
    after_phase: str | None = None
    items: list[GateItem]
    # GO needs this many distinct verified identities among the ticks of its manual items
    min_approvals: int = Field(default=0, ge=0, le=20)
    # the identity driving the run cannot be the only approver (a destructive phase)
    approver_not_operator: bool = False


class NotifySpec(Strict):
    """Where the run tells people it waits, alerts, rolls back, fails or ends. A webhook URL
    carries a token: the runbook names where it is kept, never the URL itself."""

    sns_topic_arn: str | None = Field(
        default=None, pattern=r"^arn:aws(-cn|-us-gov)?:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"
    )
    webhook_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
    webhook_ssm_parameter: str | None = Field(default=None, pattern=r"^/[A-Za-z0-9_./-]{1,1000}$")
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)  # per request
    attempts: int = Field(default=4, ge=1, le=10)  # per event and target, then journaled failed

    @model_validator(mode="after")
    def _one_place(self) -> NotifySpec:
        if self.webhook_env and self.webhook_ssm_parameter:
            raise ValueError("name the webhook's URL once: webhook_env or webhook_ssm_parameter")
        if not (self.sns_topic_arn or self.webhook_env or self.webhook_ssm_parameter):
            raise ValueError("name sns_topic_arn, webhook_env or webhook_ssm_parameter")
        return self

    @property
    def sns_region(self) -> str | None:
        return self.sns_topic_arn.split(":")[3] if self.sns_topic_arn else None


class RollbackStep(Bound):
    action: str
    params: dict[str, Any] = {}
    title: str = ""


class Rollback(Strict):
    id: SafeId
    phases: list[str]
    undoes: list[str] = []  # steps outside `phases` whose effects it removes (run again after)
    title: str
    plan_text: str
    destructive: bool = False
    steps: list[RollbackStep] = []


class Trigger(Strict):
    id: SafeId
    text: str
    metric: Literal["error_rate", "latency_increase", "inconsistency"]
    threshold: float
    # run the step's phase rollback at once when it fires (only a non-destructive one);
    # a watch step's own `auto_rollback` param overrides this for that step
    auto_rollback: bool = False


def auto_rollback_for(
    runbook: Runbook, phase: str, trigger: Trigger, step_setting: bool | None
) -> tuple[bool, Rollback | None]:
    """(wanted, the rollback to run). A trigger fired in `phase` rolls back on its own when
    the step's setting (or else the trigger's) asks for it and the phase's rollback is not
    destructive; `wanted` with no rollback is a runbook error (`runbook check` reports it)."""
    wanted = trigger.auto_rollback if step_setting is None else step_setting
    rollback = runbook.rollback_for(phase) if wanted else None
    if rollback is not None and rollback.destructive:
        rollback = None
    return wanted, rollback


class SuccessCriterion(Strict):
    id: str
    text: str
    measure: str  # name of a report measure
    target: str = ""
    expected: float | None = None  # a figure the plan states, compared with `measure`


class TimingClaim(Strict):
    """A duration the plan demands between two points of its own timeline."""

    id: str
    text: str
    hours: float
    from_step: str
    to_gate: str


class Rehearsal(Strict):
    """The clock of a rehearsal: a new run on the embedded world is scaled so that every wait
    of the plan (watch windows, soaks, the 7-day check) takes about `wall_minutes`; the console's
    +/- keys move along `scales`."""

    wall_minutes: float = 10.0
    scales: list[float] = [1, 60, 600, 3600, 36_000, 360_000, 1_000_000]


class RunbookMeta(Strict):
    id: SafeId
    title: str
    source: str = ""
    region: str = "us-east-1"
    schema_version: int = 1


class Runbook(Strict):
    runbook: RunbookMeta
    inventory: Inventory
    entities: list[EntitySpec] = []
    mapping: MappingSpec | None = None
    flags: FlagSpec = FlagSpec()
    monitoring: MonitoringSpec = MonitoringSpec()
    capacity: CapacitySpec = CapacitySpec()
    rehearsal: Rehearsal = Rehearsal()
    notify: NotifySpec | None = None
    embedded: dict[str, Any] = {}  # seed data for the local rehearsal world
    lambda_runtimes: list[RuntimeLifecycle] = []  # deprecated runtimes and their dates
    days: list[Day]
    phases: list[Phase]
    steps: list[Step]
    gates: list[Gate] = []
    rollbacks: list[Rollback] = []
    triggers: list[Trigger] = []
    success_criteria: list[SuccessCriterion] = []
    timing_claims: list[TimingClaim] = []

    def step(self, step_id: str) -> Step:
        return next(s for s in self.steps if s.id == step_id)

    def gate(self, gate_id: str) -> Gate:
        return next(g for g in self.gates if g.id == gate_id)

    def phase(self, phase_id: str) -> Phase:
        return next(p for p in self.phases if p.id == phase_id)

    def day(self, day_id: str) -> Day:
        return next(d for d in self.days if d.id == day_id)

    def entity(self, name: str) -> EntitySpec:
        return next(e for e in self.entities if e.name == name)

    # the find_* lookups: None when there is no such item (the ones above raise StopIteration)

    def find_step(self, step_id: str) -> Step | None:
        return next((s for s in self.steps if s.id == step_id), None)

    def find_entity(self, name: str) -> EntitySpec | None:
        return next((e for e in self.entities if e.name == name), None)

    def find_entity_into(self, table: str) -> EntitySpec | None:
        """The entity migrated into `table` (its target)."""
        return next((e for e in self.entities if e.target == table), None)

    def find_table(self, name: str) -> TableSpec | None:
        """An inventory table by name."""
        return next((t for t in self.inventory.tables if t.name == name), None)

    def find_rollback(self, rollback_id: str) -> Rollback | None:
        return next((r for r in self.rollbacks if r.id == rollback_id), None)

    def rollback_for(self, phase_id: str) -> Rollback | None:
        return next((r for r in self.rollbacks if phase_id in r.phases), None)

    def sequence(self) -> list[tuple[Literal["gate", "step"], str]]:
        """The order the runner walks: gates before/after their phase, steps in file order."""
        out: list[tuple[Literal["gate", "step"], str]] = []
        for phase in self.phases:
            out += [("gate", g.id) for g in self.gates if g.before_phase == phase.id]
            out += [("step", s.id) for s in self.steps if s.phase == phase.id]
            out += [("gate", g.id) for g in self.gates if g.after_phase == phase.id]
        return out


class Problem(BaseModel):
    """One finding of `runbook check`."""

    severity: Literal["error", "warning"]
    path: str  # dotted field path, e.g. steps[3].action
    message: str
    line: int | None = None
    file: str = ""

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.severity}: {self.path}: {self.message}"
