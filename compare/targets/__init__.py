"""Systems under test: starting or attaching to a variant, the unsafe reference, their stores.

The bottom layer of compare/: imports common/ only. stage (one target ready to load), target
(a variant as a process tree), reference, roles / compose / deployment (local or docker compose
targets), sandbox (private PostgreSQL / RabbitMQ / Temporal), probes (what the stores say),
pids (where the processes are), inspection (leftovers and the operator's view of one order).
"""
