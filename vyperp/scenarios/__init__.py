"""Scenario replays: a YAML file (scenarios/) played on a fresh chain with the real contracts and
keepers, judged against PROTOCOL.md's solvency rules, and reported with plots.

schema.py (the file format), prices.py (oracle paths per round), population.py (traders and LPs),
observe.py (snapshots in one multicall, risk events), rules.py (S1, S2, S3, S7), runner.py (the
rounds), report.py (HTML with SVG plots, CSV, JSON).
"""
