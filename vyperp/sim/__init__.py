"""Market simulation inputs: price paths (CSV, GBM with jumps, crashes) in `vyperp.sim.paths`."""
