"""The comparison: fault suite, consistency checker, load generator, metrics and report.

compare/ never imports mq_variant or workflow_variant: it drives them as processes, over HTTP
and through their databases, broker and Temporal server.
"""
