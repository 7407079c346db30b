"""The command lines: each module holds the click command that `ape run <name>` runs through its
shim in scripts/ (`ape run` finds commands by the file names there).

- `trade`: the trader's account and positions (`ape run trade`)
- `orders`: the trader's orders on the order book (`ape run orders`)
- `deploy`: deploy to a network from config/markets.yaml (`ape run deploy`)
- `seed`: replay a price path through a market's oracle (`ape run seed-oracles`)
- `devnet`: the persistent local devnet (`ape run devnet`)
- `gas_benchmark`, `keeper_benchmark`: the benchmarks (`ape run gas_benchmark`, `ape run keeper_benchmark`)
- `common`: what the trader commands share: one-line errors, amounts, ``--json``
"""
