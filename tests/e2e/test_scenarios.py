"""Every shipped scenario at its reduced size on a fresh anvil (real contracts, real keepers), judged
against PROTOCOL.md's solvency rules; the rendered report opened in headless Chromium.

Each run gets its own anvil (`vyperp.devnet.anvil.fresh_anvil`): a scenario moves the chain's
clock by hours or days, which the suite's shared chain must not see, and an anvil without
Ape's step tracing runs the rounds several times faster.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest
from ape import accounts as ape_accounts

from vyperp.devnet.anvil import fresh_anvil
from vyperp.scenarios.report import write_report
from vyperp.scenarios.runner import run_scenario
from vyperp.scenarios.schema import ScenarioError, load_scenario

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "scenarios"
CHROMIUM = "/usr/bin/chromium"


def play(name, project, networks):
    scenario = load_scenario(SCENARIOS / f"{name}.yaml").reduced_size()
    with fresh_anvil(networks) as provider:
        return run_scenario(scenario, project, ape_accounts, provider)


def assert_solvent(result):
    rounds = result.scenario.rounds + 1
    for rule, verdict in result.verdicts.items():
        assert verdict.passed, f"{rule} failed: {verdict.failures}"
    # S1 and S3 are judged twice a round (after the trades, after the keepers)
    assert result.verdicts["S1"].checks == 2 * rounds
    assert result.verdicts["S3"].checks == 2 * rounds


@pytest.fixture(scope="module")
def crash_50(project, networks, tmp_path_factory):
    result = play("crash-50", project, networks)
    page = write_report(result, tmp_path_factory.mktemp("reports") / "crash-50")
    return result, page


def test_crash_50_liquidates_the_longs_and_stays_solvent(crash_50):
    result, _ = crash_50
    assert_solvent(result)
    assert result.keeper_errors == []
    figures = result.figures()
    index = [row.snapshot.markets[0].index for row in result.rows]
    assert index[-1] * 2 == pytest.approx(index[0], rel=1e-6)  # the path fell 50 %
    assert figures["liquidations"] > 0
    assert figures["max_left_liquidatable"] == 0  # every round's keepers caught up


def test_crash_90_halts_then_liquidates_into_bad_debt(project, networks):
    result = play("crash-90", project, networks)
    assert_solvent(result)
    assert result.keeper_errors == []
    figures = result.figures()
    assert any(row.snapshot.markets[0].halted for row in result.rows)  # S4: the gap halts
    assert figures["liquidations"] > 0
    assert figures["bad_debt"] > 0 and figures["vault_drawdown"] > 0.1


def test_squeeze_100_liquidates_the_shorts(project, networks):
    result = play("squeeze-100", project, networks)
    assert_solvent(result)
    assert result.keeper_errors == []
    assert result.figures()["liquidations"] > 0
    assert not any(row.snapshot.markets[0].halted for row in result.rows)


def test_stale_then_jump_waits_for_the_feed(project, networks):
    result = play("stale-then-jump", project, networks)
    assert_solvent(result)
    silent = [row for row in result.rows if row.published["BTC-USD"] is None]
    assert len(silent) == 1 and silent[0].snapshot.markets[0].index is None  # stale: unusable
    assert silent[0].opened == 0
    # the ADL keeper's step fails while the index is stale (adl_eligible reverts), then recovers
    assert result.keeper_errors
    assert all(e.startswith(f"round {silent[0].round}: adl: ") and "stale price" in e
               for e in result.keeper_errors)
    assert result.figures()["liquidations"] > 0


def test_calm_week_keeps_the_vault_whole(project, networks):
    result = play("calm-week", project, networks)
    assert_solvent(result)
    assert result.keeper_errors == []
    figures = result.figures()
    assert figures["opened"] > 0 and figures["bad_debt"] == 0
    assert [m.name for m in result.rows[0].snapshot.markets] == ["BTC-USD", "ETH-USD"]


def test_a_bad_scenario_is_refused_naming_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    text = (SCENARIOS / "crash-50.yaml").read_text().replace("ramp: -0.5", "ramp: -1.5")
    text = text.replace("- hold: 21600", "- hodl: 21600")
    bad.write_text(text.replace("long_share: 0.75", "long_share: 0.75\n    levrage: 3"))
    with pytest.raises(ScenarioError) as refused:
        load_scenario(bad)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(f"{bad}: ")
    assert "markets.BTC-USD.path.segments.1.ramp: input should be greater than -1" in message
    assert "markets.BTC-USD.path.segments.2: not a segment (one of: {hold: s}," in message
    assert "traders.0.levrage: unknown key" in message


def test_the_report_renders_in_chromium(crash_50, tmp_path):
    _, page = crash_50
    summary = json.loads((page.parent / "summary.json").read_text())
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout
    table = re.search(r'<table id="verdict">.*?</table>', dom, re.S)
    assert table is not None, "no verdict table in the rendered page"
    for rule in ("S1", "S2", "S3", "S7"):
        assert re.search(rf"<td>{rule}</td>.*?<td class=\"pass\">pass</td>", table.group(0), re.S)
    assert len(summary["plots"]) == 7
    for plot_id in summary["plots"]:
        figure = re.search(rf'<figure id="plot-{plot_id}">.*?</figure>', dom, re.S)
        assert figure is not None and "<svg" in figure.group(0) and "<path" in figure.group(0), \
            f"plot {plot_id} missing from the rendered page"
