"""The base of the boa state machines: each Hypothesis example runs inside an anchor over the
module's protocol (tests/fuzz/conftest.py, tests/boa_protocol.py), so it starts from the same state and leaves none."""

import boa
from hypothesis.stateful import RuleBasedStateMachine


class ProtocolMachine(RuleBasedStateMachine):
    """Subclasses set `protocol` (a boa_protocol.BoaProtocol) on a per-test subclass."""

    protocol = None
    # Steps whose invariants ran, over all examples of a run (a guard against vacuous runs).
    checked_steps = 0

    def __init__(self):
        super().__init__()
        self._anchor = boa.env.anchor()
        self._anchor.__enter__()
        self.p = self.protocol
        self.engine = self.p.engine
        self.traders = self.p.traders

    def teardown(self):
        self._anchor.__exit__(None, None, None)
