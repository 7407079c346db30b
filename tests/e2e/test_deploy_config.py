"""`ape run deploy` with a bad config/markets.yaml: one line naming the file, the market and the
key, and no transaction sent (the deployer's nonce does not move)."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from vyperp.cli.deploy import cli as deploy_cli

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "config" / "markets.yaml"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("imr: 0.05                   # 20x", "imr: abc",
         "network 'ethereum:local', market 'BTC-USD', key 'params.imr': input should be a valid decimal, got 'abc'"),
        ("initial_price: 3500", "intial_price: 3500",
         "network 'ethereum:local', market 'ETH-USD', key 'intial_price': unknown key"),
        ("      initial_price: 150\n", "      initial_price: [150\n", "YAML syntax error"),
    ],
    ids=["bad-type", "misspelt-key", "yaml-syntax"],
)
def test_a_bad_config_is_refused_before_any_transaction(chain, admin, tmp_path, old, new, expected):
    path = tmp_path / "markets.yaml"
    text = CONFIG.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    nonce, block = admin.nonce, chain.blocks.head.number
    result = CliRunner().invoke(
        deploy_cli, ["--config", str(path), "--root", str(tmp_path / "deployments")],
        obj={"provider": chain.provider},
    )
    assert "Traceback" not in result.output
    [line] = result.output.splitlines()
    assert line.startswith(f"Error: {path}:") and expected in line
    assert result.exit_code == 1
    assert (admin.nonce, chain.blocks.head.number) == (nonce, block)
    assert not (tmp_path / "deployments").exists()
