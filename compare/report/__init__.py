"""The report a person reads: verdict, decision page, tables, plots (report.md, report.html) and
the operational-complexity analysis of the code. Reads results; imports compare.bench,
compare.faults and compare.targets, never the other way round.
"""
