"""The benchmark: open-loop load, latency histograms and resource sampling, capacity search,
burst (peak shaving), the per-stage breakdown, host pressure and run-to-run spread.

Imports compare.targets and common only.
"""
