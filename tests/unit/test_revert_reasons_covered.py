"""Every revert reason written out in the deployable contracts is checked by some test.

Pure Python over the sources: a reason string ("module: reason") that appears in contracts/ but in
no file under tests/ is a revert path nobody has seen revert. Reasons assembled at run time (the
market parameter names in "markets: <name> out of bounds") are covered by parametrized tests and
are not literals here.
"""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REASON = re.compile(r'"([a-z_]+: [^"]+)"')


def test_every_literal_revert_reason_appears_in_a_test():
    contracts = [p for p in (ROOT / "contracts").rglob("*.vy") if "test" not in p.relative_to(ROOT / "contracts").parts]
    reasons = {reason for path in contracts for reason in REASON.findall(path.read_text())}
    tests = "".join(path.read_text() for path in (ROOT / "tests").rglob("*.py"))
    assert len(reasons) > 100
    assert sorted(reason for reason in reasons if reason not in tests) == []
