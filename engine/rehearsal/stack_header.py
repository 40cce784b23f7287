"""What the rehearsal seed sends in place of CloudFormation, kept apart from the moto patches
(engine/rehearsal/moto_fidelity.py) so that seeding a world does not load moto's internals."""

STACK_HEADER = "x-runbook-rehearsal-stack"  # the seed standing in for CloudFormation
RESERVED_TAG_MESSAGE = (
    "Invalid tag key. Customers cannot set tag keys starting with aws: (case insensitive)"
)
