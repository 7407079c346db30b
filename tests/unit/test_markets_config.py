"""config/markets.yaml checked against its schema (vyperp.config_schema) by NetworkPlan.load.

Pure Python: a bad file fails here with one line naming the file, the market and the key, before
the deployer needs a provider, let alone sends a transaction.
"""

from pathlib import Path

import pytest

from vyperp.config_schema import ConfigError
from vyperp.network_deploy import NetworkPlan

REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "markets.yaml"
NETWORK = "ethereum:local"


def config_with(tmp_path, old, new):
    """The repository's config with one line changed."""
    text = REPO_CONFIG.read_text()
    assert text.count(old) >= 1, old
    path = tmp_path / "markets.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def refusal(path) -> str:
    with pytest.raises(ConfigError) as raised:
        NetworkPlan.load(NETWORK, path)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_the_repository_config_fits_the_schema():
    assert [spec.name for spec in NetworkPlan.load(NETWORK, REPO_CONFIG).markets] == ["BTC-USD", "ETH-USD", "SOL-USD"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # a bad type in a market's parameters
        ("imr: 0.05                   # 20x", "imr: abc",
         "network 'ethereum:local', market 'BTC-USD', key 'params.imr': input should be a valid decimal, got 'abc'"),
        # a misspelt parameter
        ("mmr: 0.025\n        max_position_size: 500", "mmr: 0.025\n        max_positon_size: 500",
         "network 'ethereum:local', market 'BTC-USD', key 'params.max_positon_size': unknown key"),
        # a misspelt market key (the oracle would have been deployed before it failed)
        ("initial_price: 3500", "intial_price: 3500",
         "network 'ethereum:local', market 'ETH-USD', key 'intial_price': unknown key"),
        # a boolean that is not one, a negative size, whole seconds
        ("dynamic_funding: true", "dynamic_funding: yes please",
         "network 'ethereum:local', market 'SOL-USD', key 'params.dynamic_funding': input should be a valid boolean, got 'yes please'"),
        ("max_open_interest: 5000", "max_open_interest: -5000",
         "market 'BTC-USD', key 'params.max_open_interest': input should be greater than or equal to 0, got -5000"),
        ("max_price_age: 120", "max_price_age: 1.5",
         "market 'BTC-USD', key 'params.max_price_age': input should be a valid integer, got a number with a fractional part, got 1.5"),
        # network-level keys
        ("  collateral: devnet", "  colateral: devnet", "network 'ethereum:local', key 'colateral': unknown key"),
        ("    quorum: 2", "    quorum: two", "network 'ethereum:local', key 'oracle.quorum': input should be a valid integer"),
    ],
    ids=["bad-type", "misspelt-param", "misspelt-market-key", "bad-bool", "negative", "fractional-seconds",
         "misspelt-network-key", "oracle-type"],
)
def test_a_bad_entry_is_named_by_file_market_and_key(tmp_path, old, new, expected):
    path = config_with(tmp_path, old, new)
    message = refusal(path)
    assert message.startswith(f"{path}: ")
    assert expected in message


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path):
    path = config_with(tmp_path, "      initial_price: 150\n", "      initial_price: [150\n")
    line = path.read_text().splitlines().index("      initial_price: [150") + 1
    message = refusal(path)
    assert message.startswith(f"{path}:")
    assert "YAML syntax error" in message
    # the parser notices where the flow sequence fails to close: at that line or a later one
    reported = int(message.split(":")[1])
    assert reported >= line


def test_every_network_is_checked_not_only_the_one_deployed(tmp_path):
    path = tmp_path / "markets.yaml"
    path.write_text(REPO_CONFIG.read_text() + '\n"ethereum:sepolia":\n  collateral: "0x1"\n  markets:\n    BTC-USD:\n      oracel: "0x0"\n')
    assert "network 'ethereum:sepolia', market 'BTC-USD', key 'oracel': unknown key" in refusal(path)
