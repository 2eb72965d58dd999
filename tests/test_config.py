from __future__ import annotations

from pathlib import Path

import pytest

from tradenode import ConfigError, load_config, parse_config
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
