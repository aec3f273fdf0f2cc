"""The order flow as a Temporal workflow with idempotent activities (see README, workflow variant)."""
