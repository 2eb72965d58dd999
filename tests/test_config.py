from __future__ import annotations

from pathlib import Path

import pytest

from tradenode import ConfigError, load_config, parse_config

# The default config's text is internal (the CLI prints it): it must parse.
from tradenode._config import default_config_text

REPO = Path(__file__).resolve().parents[1]


def test_the_embedded_default_is_config_paper_yaml() -> None:
    assert (REPO / "config" / "paper.yaml").read_text() == default_config_text()
    assert load_config().node.name == "paper-node"


def test_env_interpolation_with_default_and_required() -> None:
    text = "node:\n  name: ${NODE_NAME}\n  seed: ${SEED:-9}\n"
    config = parse_config(text, environ={"NODE_NAME": "live-1"})
    assert (config.node.name, config.node.seed) == ("live-1", 9)
    with pytest.raises(ConfigError, match=r"node\.name: environment variable NODE_NAME is not set"):
        parse_config(text, environ={})


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        ("node:\n  shutdown_timeout: 0\n", "node.shutdown_timeout", "greater than 0"),
        ("node:\n  intensity:\n    max_restarts: many\n", "node.intensity.max_restarts", "'many'"),
        ("nodes: {}\n", "nodes", "Extra inputs"),
        ("broker_backoff:\n  min_seconds: -2\n", "broker_backoff.min_seconds", "-2"),
    ],
)
def test_errors_name_the_bad_key_and_value(text: str, key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert caught.value.key == key
    assert key in str(caught.value) and fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_broken_yaml_and_missing_file_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("node: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")
    with pytest.raises(ConfigError, match="must be a mapping"):
        parse_config("- a list\n")


REPO = Path(__file__).resolve().parents[1]


def test_the_binance_testnet_example_loads_with_keys_from_the_environment() -> None:
    environ = {"BINANCE_TESTNET_API_KEY": "k" * 64, "BINANCE_TESTNET_API_SECRET": "s" * 64}
    config = load_config(REPO / "config" / "binance-testnet.yaml", environ=environ)
    (venue,) = config.venues
    assert venue.kind == "binance" and venue.settings is not None
    assert venue.settings.environment == "testnet"
    assert venue.settings.api_secret.get_secret_value() == "s" * 64
    assert "s" * 64 not in repr(config)
    with pytest.raises(ConfigError) as missing:
        load_config(REPO / "config" / "binance-testnet.yaml", environ={})
    assert "BINANCE_TESTNET_API_KEY" in str(missing.value)


@pytest.mark.parametrize(
    ("venue", "key"),
    [
        ("{name: b, kind: binance}", "venues[0].binance"),
        ("{name: b, binance: {api_key: k, api_secret: s}}", "venues[0].binance"),
        (
            "{name: b, kind: binance, binance: {api_key: k, api_secret: s, environment: custom}}",
            "venues[0].binance.rest_url",
        ),
        (
            "{name: b, kind: binance, binance: {api_key: k, api_secret: s, rest_url: 'http://x'}}",
            "venues[0].binance.rest_url",
        ),
        (
            "{name: b, kind: binance, binance: {api_key: k, api_secret: s, recv: 1}}",
            "venues[0].binance.recv",
        ),
    ],
)
def test_binance_venue_errors_name_the_key(venue: str, key: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(f"venues:\n  - {venue}\n")
    assert error.value.key == key
