"""What an action or a check sees while it runs: context, events, clock, throttle, outcomes,
snapshot views."""
