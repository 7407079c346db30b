"""A scenario's report: one self-contained HTML file (the verdict table first, then the figures
and the plots as inline SVG), the rounds as CSV, the verdicts and figures as JSON, and each plot
as an SVG file of its own (for a page that shows one, like the README).

Plots are matplotlib SVG written into the page, not images beside it: the file opens anywhere,
diffs as text and stays small (no fonts embedded: `svg.fonttype = none`); ids and dates are
fixed so that the same run renders the same bytes.
"""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("svg")  # headless: no display, and SVG is all the report embeds
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen

from vyperp.scenarios.rules import RULES  # noqa: E402
from vyperp.scenarios.runner import WAD, ScenarioResult  # noqa: E402

plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": "vyperp", "figure.dpi": 72,
                     "font.size": 9, "axes.grid": True, "grid.alpha": 0.3})
FIGSIZE = (8.0, 3.0)


def rows_table(result: ScenarioResult) -> list[dict]:
    """One flat dict per round: what rounds.csv holds and the plots draw."""
    table = []
    cumulative = {"liquidations": 0, "adl": 0, "bad_debt": 0.0, "insurance_used": 0.0}
    for row in result.rows:
        s = row.snapshot
        cumulative["liquidations"] += row.liquidations
        cumulative["adl"] += row.adl
        cumulative["bad_debt"] += (row.insurance_used + row.vault_covered) / WAD
        cumulative["insurance_used"] += row.insurance_used / WAD
        entry = {
            "round": row.round, "hours": row.hours, "block": s.block, "timestamp": s.timestamp,
            "vault_balance": s.vault_balance / WAD,
            "vault_equity": _wad(s.vault_equity), "share_price": s.share_price,
            "insurance": s.insurance / WAD, "vault_bad_debt": s.vault_bad_debt / WAD,
            "engine_tokens": s.engine_tokens / WAD,
            "liquidations": row.liquidations, "adl": row.adl,
            "liquidations_total": cumulative["liquidations"], "adl_total": cumulative["adl"],
            "bad_debt_total": cumulative["bad_debt"],
            "insurance_used_total": cumulative["insurance_used"],
            "profit_capped": row.profit_capped / WAD,
            "opened": row.opened, "closed": row.closed, "stopped": row.stopped,
            "refused": row.refused, "lp_deposited": float(row.lp_deposited),
            "liquidatable_left": row.liquidatable_left, "worst_left": row.worst_left,
            "adl_eligible": s.adl_eligible,
        }
        for market in s.markets:
            published = row.published.get(market.name)
            prefix = market.name
            entry.update({
                f"{prefix} published": None if published is None else float(published),
                f"{prefix} index": _wad(market.index), f"{prefix} mark": _wad(market.mark),
                f"{prefix} funding rate (8h)": _wad(market.funding_rate),
                f"{prefix} funding index": _wad(market.funding_index),
                f"{prefix} long OI": market.long_oi / WAD,
                f"{prefix} short OI": market.short_oi / WAD,
                f"{prefix} halted": market.halted,
            })
        for rule, value in row.rule_values.items():
            entry[f"{rule} value"] = value
        table.append(entry)
    return table


def write_report(result: ScenarioResult, directory: Path) -> Path:
    """Writes index.html, rounds.csv and summary.json into ``directory``; returns the page."""
    directory.mkdir(parents=True, exist_ok=True)
    table = rows_table(result)
    with open(directory / "rounds.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
    plots = _plots(result, table)
    summary = {
        "scenario": result.scenario.name,
        "description": result.scenario.description,
        "round_seconds": result.scenario.round_seconds,
        "passed": result.passed,
        "verdicts": {rule: _verdict_json(verdict) for rule, verdict in result.verdicts.items()},
        "figures": result.figures(),
        "keeper_errors": result.keeper_errors,
        "plots": [plot_id for plot_id, _, _ in plots],
    }
    (directory / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    for plot_id, _, svg in plots:  # each plot on its own as well, for pages that link one
        (directory / f"{plot_id}.svg").write_text(svg)
    page = directory / "index.html"
    page.write_text(_html(result, summary, plots))
    return page


def _verdict_json(verdict) -> dict:
    return {"passed": verdict.passed, "checks": verdict.checks,
            "failed_checks": verdict.failed_checks, "worst": verdict.worst,
            "worst_at": verdict.worst_at, "unit": verdict.unit, "failures": verdict.failures,
            "note": verdict.note}


# ---- plots ----


def _plots(result: ScenarioResult, table: list[dict]) -> list[tuple[str, str, str]]:
    """(id, caption, svg) of every plot."""
    hours = [entry["hours"] for entry in table]
    markets = [m.name for m in result.rows[0].snapshot.markets]
    plots = []

    def plot(plot_id: str, caption: str, draw) -> None:
        figure, axes = plt.subplots(figsize=FIGSIZE)
        draw(axes)
        axes.set_xlabel("hours")
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="best", fontsize=8)
        figure.tight_layout()
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg", metadata={"Date": None})
        plt.close(figure)
        svg = buffer.getvalue()
        plots.append((plot_id, caption, svg[svg.index("<svg"):]))

    def column(name):
        return [entry[name] for entry in table]

    def prices(axes):
        for market in markets:
            axes.plot(hours, column(f"{market} index"), label=f"{market} index")
            axes.plot(hours, column(f"{market} mark"), "--", label=f"{market} mark")
        axes.set_ylabel("USD")

    def funding(axes):
        for market in markets:
            axes.plot(hours, [None if v is None else v * 100 for v in
                              column(f"{market} funding rate (8h)")], label=f"{market} rate")
        axes.set_ylabel("% per 8 h")
        twin = axes.twinx()
        for market in markets:
            twin.plot(hours, column(f"{market} funding index"), ":", label=f"{market} index")
        twin.set_ylabel("funding index (USD per unit)")

    def open_interest(axes):
        for market in markets:
            axes.plot(hours, column(f"{market} long OI"), label=f"{market} long")
            axes.plot(hours, column(f"{market} short OI"), label=f"{market} short")
        axes.set_ylabel("base units")

    def vault(axes):
        axes.plot(hours, column("share_price"), color="tab:blue", label="share price")
        axes.set_ylabel("dUSD per share")
        twin = axes.twinx()
        twin.plot(hours, column("vault_balance"), color="tab:orange", label="vault balance")
        twin.plot(hours, column("vault_equity"), ":", color="tab:green", label="vault equity")
        twin.set_ylabel("dUSD")
        twin.legend(loc="lower left", fontsize=8)

    def insurance(axes):
        axes.plot(hours, column("insurance"), label="insurance fund")
        axes.plot(hours, column("vault_bad_debt"), label="vault bad debt outstanding")
        axes.set_ylabel("dUSD")

    def losses(axes):
        axes.step(hours, column("liquidations_total"), where="post", label="liquidations")
        axes.step(hours, column("adl_total"), where="post", label="ADL closes")
        axes.step(hours, column("liquidatable_left"), where="post",
                  label="left liquidatable after keepers")
        axes.set_ylabel("count")
        twin = axes.twinx()
        twin.plot(hours, column("bad_debt_total"), color="tab:red", label="bad debt (cumulative)")
        twin.set_ylabel("dUSD")
        twin.legend(loc="lower right", fontsize=8)

    def counterparty(axes):
        axes.plot(hours, column("S2 value"), label="traders' profit / vault")
        first = result.rows[0].snapshot
        axes.axhline(first.max_pnl_factor / WAD, color="tab:red", ls="--", label="max_pnl_factor")
        axes.axhline(first.adl_target / WAD, color="tab:orange", ls=":", label="adl_target")
        axes.set_ylabel("ratio")

    plot("prices", "Index and mark price", prices)
    plot("funding", "Funding rate (per 8 h, solid) and funding index (dotted)", funding)
    plot("open-interest", "Open interest per side", open_interest)
    plot("vault", "LP vault: share price, balance and equity", vault)
    plot("insurance", "Insurance fund and the vault's uncovered bad debt", insurance)
    plot("losses", "Liquidations, ADL, accounts left liquidatable and bad debt", losses)
    plot("counterparty-cap", "S2: traders' net profit over the vault, with the caps", counterparty)
    return plots


# ---- page ----

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; }
th, td { border: 1px solid #ccc; padding: .3rem .6rem; text-align: left; vertical-align: top; }
td.pass { background: #e3f6e3; } td.fail { background: #fbe0e0; font-weight: bold; }
figure { margin: 1.5rem 0; } figcaption { font-weight: bold; margin-bottom: .3rem; }
figure svg { width: 100%; height: auto; }
"""


def _html(result: ScenarioResult, summary: dict, plots) -> str:
    scenario = result.scenario
    verdict_rows = []
    for rule, verdict in result.verdicts.items():
        status = "pass" if verdict.passed else "fail"
        worst = "n/a" if verdict.worst is None else f"{verdict.worst:,.4g} {verdict.unit}"
        detail = "; ".join(verdict.failures) or verdict.note
        verdict_rows.append(
            f"<tr><td>{rule}</td><td>{html.escape(RULES[rule])}</td>"
            f"<td class=\"{status}\">{status}</td><td>{verdict.checks}</td>"
            f"<td>{html.escape(worst)}</td><td>{html.escape(verdict.worst_at)}</td>"
            f"<td>{html.escape(detail)}</td></tr>")
    figures = "".join(
        f"<tr><th>{html.escape(key.replace('_', ' '))}</th><td>{_shown(value)}</td></tr>"
        for key, value in summary["figures"].items())
    errors = "".join(f"<li>{html.escape(e)}</li>" for e in result.keeper_errors) or "<li>none</li>"
    figures_html = "".join(
        f'<figure id="plot-{plot_id}"><figcaption>{html.escape(caption)}</figcaption>{svg}'
        "</figure>" for plot_id, caption, svg in plots)
    markets = ", ".join(scenario.markets)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>vyperp scenario {html.escape(scenario.name)}</title><style>{STYLE}</style></head>
<body>
<h1>Scenario {html.escape(scenario.name)}</h1>
<p>{html.escape(scenario.description)}</p>
<h2>Verdict</h2>
<table id="verdict"><thead><tr><th>Rule</th><th>Statement checked</th><th>Result</th>
<th>Checks</th><th>Worst value</th><th>Where</th><th>Detail</th></tr></thead>
<tbody>{''.join(verdict_rows)}</tbody></table>
<p>Checked after each round's trades and again after its keepers (PROTOCOL.md, "Solvency and
price integrity"); how each statement is measured: vyperp/scenarios/rules.py.</p>
<h2>Figures</h2>
<table id="figures"><tbody>{figures}</tbody></table>
<p>{scenario.rounds + 1} rounds of {scenario.round_seconds} s of chain time; markets {markets};
{len(scenario.traders)} trader groups ({sum(g.count for g in scenario.traders)} traders),
{len(scenario.lps)} LPs besides the {scenario.vault_deposit:,} dUSD seed. Keeper errors:</p>
<ul id="keeper-errors">{errors}</ul>
<h2>Plots</h2>
{figures_html}
<p>Data: rounds.csv (one row per round, after the keepers) and summary.json.</p>
</body></html>
"""


def _shown(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    return f"{value:,}" if isinstance(value, int) else html.escape(str(value))


def _wad(value: int | None) -> float | None:
    return None if value is None else value / WAD

