"""The fault suite, Jepsen-style: a workload records a history, nemeses break the system, and a
checker reads the databases and the history.

scenario (the catalogue and the controls), workload and history (the generator and what the client
saw), injectors / proxy / netns / nemesis (the faults), checker (the anomalies), runner (one
scenario end to end), matrix (the anomaly matrix for `compare run`), command (`compare faults`).
Imports compare.targets and common only.
"""
