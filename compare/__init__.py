"""The comparison, in four packages by job: targets (the systems under test), faults (the fault
suite and its checker), bench (load, latency, capacity), report (verdict, decision page, plots);
cli.py parses every command, run.py drives `compare run` across them.

compare/ never imports mq_variant or workflow_variant: it drives them as processes, over HTTP
and through their databases, broker and Temporal server.
"""
