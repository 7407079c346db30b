"""Keepers: plain classes with a `step(...)` that bots run and tests drive directly.

- `oracle_feeder.OracleFeeder`: pushes path or simulated prices through an oracle's reporters.
- `funding.FundingKeeper`: checkpoints every usable market's funding in one transaction.
- `metrics.KeeperMetrics`: counters, latency and logging every keeper shares.
- `bots`: when the Silverback bots in bots/ step their keeper (every block, every minute).
"""
