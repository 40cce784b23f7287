"""What engine/rehearsal/moto_fidelity.py and moto_capacity.py rely on in moto, checked: a moto
upgrade that changes a patched function fails loudly, in one line naming the moto version and
the function, never with a wrong rehearsal. The embedded server checks before it patches; the
suite checks each entry.

Each entry names a function the patches replace or call, the parameters it was written against
(names and kinds, not annotations, which render differently across Pythons), and where the
patch depends on what the function does, a probe of that behaviour. docs/moto.md says how to
move to a new moto.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any


class MotoChanged(Exception):
    """moto is not the version the fidelity patches were written against."""


@dataclass(frozen=True)
class Relied:
    """One moto function the patches rely on."""

    path: str  # module:qualified.name
    parameters: str  # "self, key, value": names in order, * and ** marked
    probe: Callable[[Any], str | None] | None = None  # gets the function; a problem or None


def _parameters(func: Any) -> str:
    marks = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
    params = inspect.signature(func).parameters.values()
    return ", ".join(f"{marks.get(p.kind, '')}{p.name}" for p in params)


def _resolve(path: str) -> Any:
    module_name, _, qualified = path.partition(":")
    found: Any = importlib.import_module(module_name)
    for part in qualified.split("."):
        found = getattr(found, part)
    return inspect.unwrap(found)  # moto's own function under a fidelity patch


def _probe_number_size(size: Callable[[Any], int]) -> str | None:
    """aws_item_size leaves scalars to moto: numbers must be counted as DynamoDB counts them
    (1 byte per 2 significant digits, + 1), as moto does since 5.2.6."""
    dynamo_type = importlib.import_module("moto.dynamodb.models.dynamo_type").DynamoType
    seen = {n: size(dynamo_type({"N": n})) for n in ("1000000", "12345", "-7", "0.00012")}
    wanted = {"1000000": 2, "12345": 4, "-7": 2, "0.00012": 2}
    if seen != wanted:
        return f"numbers are not counted as DynamoDB counts them: {seen}, expected {wanted}"
    if size(dynamo_type({"S": "héllo"})) != 6:
        return "a string is not counted in UTF-8 bytes"
    return None


def _probe_documents_become_types(init: Any) -> str | None:
    """aws_item_size walks lists and maps: their elements must be DynamoTypes."""
    dynamo_type = importlib.import_module("moto.dynamodb.models.dynamo_type").DynamoType
    value = dynamo_type({"L": [{"M": {"a": {"N": "1"}}}]})
    inner = value.value[0] if isinstance(value.value, list) else None
    ok = type(inner) is dynamo_type and type(inner.value.get("a")) is dynamo_type
    return None if ok else "list elements and map values are no longer DynamoType objects"


def _probe_items_use_limited_dict(init: Any) -> str | None:
    """aws_item_size_limit replaces LimitedSizeDict.__setitem__: every item's attributes must
    be stored through it."""
    module = importlib.import_module("moto.dynamodb.models.dynamo_type")
    item = module.Item(module.DynamoType({"S": "k"}), None, {"k": {"S": "k"}})
    if type(item.attrs) is not module.LimitedSizeDict:
        return "an item's attributes are no longer a LimitedSizeDict"
    return None


def _probe_filter_expression(func: Any) -> str | None:
    """A checked transaction evaluates each condition with get_filter_expression(...).expr."""
    if not func("attribute_not_exists(#k)", {"#k": "k"}, {}).expr(None):
        return "attribute_not_exists on a missing item is no longer true"
    return None


def _probe_cancellation(exc: Any) -> str | None:
    """A checked transaction cancels with reasons as (code, message, item) triples."""
    text = str(exc([(None, None, None), ("ConditionalCheckFailed", "failed", None)]))
    if "None, ConditionalCheckFailed" not in text:
        return f"cancellation reasons render as {text!r}"
    return None


def _probe_handler_body(call_action: Any) -> str | None:
    """aws_provisioned_capacity reads each write's parsed request from the handler's body."""
    if "self.body = " not in inspect.getsource(call_action):
        return "DynamoHandler.call_action no longer sets self.body to the parsed request"
    return None


def _probe_table_capacity(init: Any) -> str | None:
    """aws_provisioned_capacity reads a table's billing mode and WriteCapacityUnits."""
    table = importlib.import_module("moto.dynamodb.models.table").Table(
        "t", "123456789012", "us-east-1", [{"AttributeName": "k", "KeyType": "HASH"}],
        [{"AttributeName": "k", "AttributeType": "S"}],
        throughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 7}, billing_mode="PROVISIONED",
    )  # fmt: skip
    if table.billing_mode != "PROVISIONED" or table.throughput.get("WriteCapacityUnits") != 7:
        return "a table no longer keeps billing_mode and throughput as given"
    return None


CAPACITY_HANDLERS = tuple(
    Relied(f"moto.dynamodb.responses:DynamoHandler.{op}", "self")
    for op in ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items")
)


RELIED: tuple[Relied, ...] = (
    *CAPACITY_HANDLERS,
    Relied("moto.dynamodb.responses:DynamoHandler.call_action", "self", _probe_handler_body),
    Relied(
        "moto.dynamodb.models.table:Table.__init__",
        "self, table_name, account_id, region, schema, attr, throughput, billing_mode, indexes, "
        "global_indexes, streams, sse_specification, tags, deletion_protection_enabled, "
        "warm_throughput",
        _probe_table_capacity,
    ),
    Relied("moto.dynamodb.exceptions:DynamodbException", "error_type, message, _, **kwargs"),
    Relied("moto.dynamodb.models.dynamo_type:Item.to_json", "self, root_attr_name"),
    Relied("moto.dynamodb.models.dynamo_type:LimitedSizeDict.__setitem__", "self, key, value"),
    Relied("moto.dynamodb.models.dynamo_type:DynamoType.size", "self", _probe_number_size),
    Relied(
        "moto.dynamodb.models.dynamo_type:DynamoType.__init__",
        "self, type_as_dict",
        _probe_documents_become_types,
    ),
    Relied(
        "moto.dynamodb.models.dynamo_type:Item.__init__",
        "self, hash_key, range_key, attrs",
        _probe_items_use_limited_dict,
    ),
    Relied("moto.dynamodb.models.table:Table.all_items", "self"),
    Relied(
        "moto.dynamodb.models.table:Table.scan",
        "self, filters, limit, exclusive_start_key, filter_expression, index_name, "
        "consistent_read, projection_expression, segments",
    ),
    Relied(
        "moto.dynamodb.models.table:Table.put_item",
        "self, item_attrs, expected, condition_expression, expression_attribute_names, "
        "expression_attribute_values, overwrite, return_values_on_condition_check_failure",
    ),
    Relied("moto.dynamodb.models.table:Table.delete_item", "self, hash_key, range_key"),
    Relied("moto.dynamodb.models:DynamoDBBackend.transact_write_items", "self, transact_items"),
    Relied("moto.dynamodb.models:DynamoDBBackend.get_table", "self, table_name"),
    Relied(
        "moto.dynamodb.models:DynamoDBBackend.get_item",
        "self, table_name, keys, projection_expressions",
    ),
    Relied(
        "moto.dynamodb.models:DynamoDBBackend.put_item",
        "self, table_name, item_attrs, expected, condition_expression, "
        "expression_attribute_names, expression_attribute_values, overwrite, "
        "return_values_on_condition_check_failure",
    ),
    Relied(
        "moto.dynamodb.models:DynamoDBBackend.delete_item",
        "self, table_name, key, expression_attribute_names, expression_attribute_values, "
        "condition_expression, return_values_on_condition_check_failure",
    ),
    Relied(
        "moto.dynamodb.models:DynamoDBBackend.update_item",
        "self, table_name, key, update_expression, expression_attribute_names, "
        "expression_attribute_values, attribute_updates, expected, condition_expression, "
        "return_values_on_condition_check_failure",
    ),
    Relied(
        "moto.dynamodb.comparisons:get_filter_expression",
        "expr, names, values",
        _probe_filter_expression,
    ),
    Relied(
        "moto.dynamodb.exceptions:TransactionCanceledException",
        "errors",
        _probe_cancellation,
    ),
    Relied("moto.dynamodb.exceptions:MultipleTransactionsException", ""),
    Relied("moto.awslambda.responses:LambdaResponse.create_function", "self"),
    Relied("moto.awslambda.responses:LambdaResponse.tag_resource", "self"),
    Relied("moto.awslambda.models:LambdaFunction.get_configuration", "self, on_create"),
    Relied("moto.awslambda.models:LambdaFunction.update_configuration", "self, config_updates"),
    Relied("moto.awslambda.models:LambdaFunction.update_function_code", "self, updated_spec"),
    Relied(
        "moto.awslambda.models:LambdaBackend.update_function_configuration",
        "self, function_name, qualifier, body",
    ),
    Relied(
        "moto.awslambda.models:LambdaBackend.get_function", "self, function_name_or_arn, qualifier"
    ),
    Relied("moto.awslambda.exceptions:InvalidParameterValueException", "message"),
    Relied("moto.dynamodb.models.table_export:TableExport._backup_to_s3_file", "self, s3_backend"),
    Relied("moto.dynamodb.models.table_export:TableExport.response", "self"),
    Relied("moto.awslambda.exceptions:PreconditionFailedException", "message"),
)


# what the step-functions patches rely on (aws_sdk_bodies, aws_map_runs, aws_map_run_children,
# moto_lambda):
# checked only by a
# world that executes state machines (moto's interpreter takes 2.5 s to import)
RELIED_SFN: tuple[Relied, ...] = (
    Relied(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service."
        "state_task_service_aws_sdk:StateTaskServiceAwsSdk._eval_service_task",
        "self, env, resource_runtime_part, normalised_parameters, state_credentials",
    ),
    Relied(
        "moto.stepfunctions.parser.models:StepFunctionsParserBackend.list_map_runs",
        "self, execution_arn",
    ),
    Relied("moto.stepfunctions.responses:StepFunctionResponse.list_executions", "self"),
    Relied("moto.awslambda.models:LambdaFunction._invoke_lambda", "self, event"),
    Relied("moto.stepfunctions.responses:ActionResult", "result"),
)


def moto_version() -> str:
    try:
        return metadata.version("moto")
    except metadata.PackageNotFoundError:
        return "(not installed)"


def problem_with(relied: Relied) -> str | None:
    """One line naming the moto version and the function when moto no longer fits, else None."""
    where = f"moto {moto_version()}: {relied.path.replace(':', '.')}"
    try:
        func = _resolve(relied.path)
    except (ImportError, AttributeError):
        return f"{where}: not found (see docs/moto.md)"
    found = _parameters(func)
    if found != relied.parameters:
        return f"{where}: parameters ({found}), the patch expects ({relied.parameters})"
    if relied.probe is not None:
        problem = relied.probe(func)
        if problem:
            return f"{where}: {problem} (see docs/moto.md)"
    return None


def check_moto(step_functions: bool = False) -> None:
    """Raise MotoChanged with every problem, one line each, before anything is patched
    (`step_functions`: the state machines' patches too)."""
    relied = RELIED + (RELIED_SFN if step_functions else ())
    problems = [p for p in (problem_with(r) for r in relied) if p]
    if problems:
        raise MotoChanged("\n".join(problems))
