"""Config errors never print a secret, and every one names its key in one line.

Every validator and error path of the config is driven with distinctive
secrets in the environment (``${ENV}``) and in the file, and no message may
contain one: not ``str``, ``repr``, ``key``, nor the chained traceback a
Python caller would see if it let the error escape.
"""

from __future__ import annotations

import copy
import traceback
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from tradenode import ConfigError, parse_config

#: An Ed25519 private key (RFC 8032 TEST 1) and a P-256 one: PEM bodies are secrets too.
ED25519_BODY = "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g"
ED25519_PEM = f"-----BEGIN PRIVATE KEY-----\n{ED25519_BODY}\n-----END PRIVATE KEY-----\n"
EC_BODY = (
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgy/965LwwFkQG5XTe\n"
    "vDoUCNHvWPoALYgcLnvp9JeI/4qhRANCAARcf19Ppo8tG7sBJSw5ISxvIdDMKf69\n"
    "KshCmsEetirQPoM947DdvjBRHDgHIvFQGzAAIXH0f/copg6Dy1TvzEYc"
)
EC_PEM = f"-----BEGIN PRIVATE KEY-----\n{EC_BODY}\n-----END PRIVATE KEY-----\n"

ENVIRON = {
    "TN_API_KEY": "Zq7KEYvalue-aa11bb22cc33",
    "TN_API_SECRET": "Xw9SECRETvalue-dd44ee55ff66",
    "TN_PASSPHRASE": "Pp3passPHRASE-gg77hh88",
    "TN_TOKEN": "Tt5tokenVALUE-ii99jj00",
    "TN_PRIVATE_KEY": ED25519_PEM,
    "TN_EC_KEY": EC_PEM,
}
#: Secrets written into the file itself, under secret or unknown keys.
LITERAL_SECRET = "LiteralSecret-kk11ll22"
LITERAL_NUMBER = 424242424242
SECRETS = (
    *ENVIRON.values(),
    LITERAL_SECRET,
    str(LITERAL_NUMBER),
    ED25519_BODY,
    ED25519_BODY[10:40],
    *EC_BODY.split("\n"),
)


def base() -> dict[str, Any]:
    """A valid config with secrets from the environment in a venue and a strategy."""
    return {
        "venues": [
            {"name": "paper"},
            {
                "name": "bin",
                "kind": "binance",
                "binance": {
                    "environment": "custom",
                    "api_key": "${TN_API_KEY}",
                    "api_secret": "${TN_API_SECRET}",
                    "rest_url": "http://127.0.0.1:1",
                    "ws_api_url": "ws://127.0.0.1:1/ws-api/v3",
                    "stream_url": "ws://127.0.0.1:1",
                    "symbols": ["BTCUSDT"],
                },
            },
        ],
        "strategies": [
            {
                "id": "s1",
                "venue": "paper",
                "symbols": ["BTCUSDT"],
                "params": {"passphrase": "${TN_PASSPHRASE}", "api_token": "${TN_TOKEN}"},
            }
        ],
    }


Change = Callable[[dict[str, Any]], None]


def binance(config: dict[str, Any]) -> dict[str, Any]:
    section: dict[str, Any] = config["venues"][1]["binance"]
    return section


def setting(name: str, value: Any) -> Change:
    return lambda config: binance(config).__setitem__(name, value)


def dropping(name: str) -> Change:
    return lambda config: binance(config).pop(name)


def settings(**changes: Any) -> Change:
    """Several changes to the binance section at once (None drops a key)."""

    def change(config: dict[str, Any]) -> None:
        section = binance(config)
        for name, value in changes.items():
            if value is None:
                section.pop(name, None)
            else:
                section[name] = value

    return change


def ed25519(**changes: Any) -> Change:
    """An Ed25519 key section (api_secret dropped), with ``changes`` on top."""
    return settings(key_type="ed25519", api_secret=None, **changes)


def strategy(**changes: Any) -> Change:
    return lambda config: config["strategies"][0].update(changes)


def adding_strategy(**fields: Any) -> Change:
    return lambda config: config["strategies"].append({"id": "s2", **fields})


def top(name: str, value: Any) -> Change:
    return lambda config: config.__setitem__(name, value)


def venue(index: int, **changes: Any) -> Change:
    return lambda config: config["venues"][index].update(changes)


def adding_venue(**fields: Any) -> Change:
    return lambda config: config["venues"].append(fields)


BIN = "venues[1].binance"

# (id, change to the valid config, the key the error must name)
CASES: list[tuple[str, Change, str]] = [
    # BinanceSettings' model validator: environment and URLs
    ("custom-without-rest-url", dropping("rest_url"), f"{BIN}.rest_url"),
    ("custom-without-ws-api-url", dropping("ws_api_url"), f"{BIN}.ws_api_url"),
    ("custom-without-stream-url", dropping("stream_url"), f"{BIN}.stream_url"),
    ("testnet-with-urls", setting("environment", "testnet"), f"{BIN}.rest_url"),
    ("live-with-urls", setting("environment", "live"), f"{BIN}.rest_url"),
    # VenueConfig's model validator: kind and section
    ("binance-section-under-paper", venue(1, kind="paper"), f"{BIN}"),
    ("binance-without-section", adding_venue(name="b2", kind="binance"), "venues[2].binance"),
    # unknown keys hold secrets too
    ("misspelled-api-secret", setting("api_secrett", "${TN_API_SECRET}"), f"{BIN}.api_secrett"),
    ("unknown-passphrase", setting("passphrase", "${TN_PASSPHRASE}"), f"{BIN}.passphrase"),
    ("unknown-literal-key", setting("private_key", LITERAL_SECRET), f"{BIN}.private_key"),
    ("unknown-venue-key", venue(1, secret=LITERAL_SECRET), "venues[1].secret"),
    ("unknown-strategy-key", strategy(token="${TN_TOKEN}"), "strategies[0].token"),
    ("unknown-top-level-key", top("api_secret", "${TN_API_SECRET}"), "api_secret"),
    # wrong types on every secret field
    ("api-key-list", setting("api_key", ["${TN_API_KEY}"]), f"{BIN}.api_key"),
    ("api-key-mapping", setting("api_key", {"k": "${TN_API_KEY}"}), f"{BIN}.api_key"),
    ("api-key-number", setting("api_key", LITERAL_NUMBER), f"{BIN}.api_key"),
    ("api-key-null", setting("api_key", None), f"{BIN}.api_key"),
    ("api-secret-list", setting("api_secret", ["${TN_API_SECRET}"]), f"{BIN}.api_secret"),
    ("api-secret-number", setting("api_secret", LITERAL_NUMBER), f"{BIN}.api_secret"),
    ("api-secret-bool", setting("api_secret", True), f"{BIN}.api_secret"),
    ("missing-api-key", dropping("api_key"), f"{BIN}.api_key"),
    ("missing-api-secret", dropping("api_secret"), f"{BIN}.api_secret"),
    # key_type ed25519: private_key (PEM text) or private_key_path, never api_secret
    ("ed25519-without-private-key", ed25519(), f"{BIN}.private_key"),
    (
        "ed25519-with-api-secret",
        settings(key_type="ed25519", private_key="${TN_PRIVATE_KEY}"),
        f"{BIN}.api_secret",
    ),
    (
        "ed25519-with-both-keys",
        ed25519(private_key="${TN_PRIVATE_KEY}", private_key_path="/tmp/k.pem"),
        f"{BIN}.private_key",
    ),
    ("ed25519-key-not-pem", ed25519(private_key="${TN_API_SECRET}"), f"{BIN}.private_key"),
    ("ed25519-key-not-ed25519", ed25519(private_key="${TN_EC_KEY}"), f"{BIN}.private_key"),
    ("ed25519-key-list", ed25519(private_key=["${TN_PRIVATE_KEY}"]), f"{BIN}.private_key"),
    ("ed25519-key-number", ed25519(private_key=LITERAL_NUMBER), f"{BIN}.private_key"),
    (
        "ed25519-key-literal-garbage",
        ed25519(private_key=LITERAL_SECRET),
        f"{BIN}.private_key",
    ),
    (
        "ed25519-missing-key-file",
        ed25519(private_key_path="/nonexistent/${TN_API_SECRET}.pem"),
        f"{BIN}.private_key_path",
    ),
    (
        "ed25519-key-path-list",
        ed25519(private_key_path=["${TN_PRIVATE_KEY}"]),
        f"{BIN}.private_key_path",
    ),
    ("hmac-with-private-key", setting("private_key", "${TN_PRIVATE_KEY}"), f"{BIN}.private_key"),
    ("env-in-key-type", setting("key_type", "${TN_API_SECRET}"), f"{BIN}.key_type"),
    # a secret from the environment in a field that is not secret
    ("env-in-recv-window", setting("recv_window_ms", "${TN_API_SECRET}"), f"{BIN}.recv_window_ms"),
    ("env-in-environment", setting("environment", "${TN_API_SECRET}"), f"{BIN}.environment"),
    ("env-in-url", setting("rest_url", ["${TN_API_SECRET}"]), f"{BIN}.rest_url"),
    ("env-as-section", venue(1, binance="${TN_API_SECRET}"), BIN),
    ("env-as-venue-name", venue(1, name="${TN_API_SECRET}"), "venues[1].name"),
    ("env-in-node-seed", top("node", {"seed": "${TN_API_SECRET}"}), "node.seed"),
    ("env-as-venues", top("venues", "${TN_API_SECRET}"), "venues"),
    ("env-in-status-interval", top("status_interval", "x${TN_API_SECRET}"), "status_interval"),
    (
        "env-in-instrument-rules",
        top("risk", {"instruments": {"BTCUSDT": {"tick_size": "${TN_API_SECRET}", "lot_size": 1}}}),
        "risk.instruments.BTCUSDT.tick_size",
    ),
    ("env-in-param", strategy(params={"api_token": ["${TN_TOKEN}"]}), "strategies[0].params"),
    ("literal-key-secret-pair", venue(1, binance=f"api_secret:{LITERAL_SECRET}"), BIN),
    # NodeConfig's model validator: names, venues, symbols
    ("duplicate-venue", adding_venue(name="paper"), "venues[2].name"),
    ("duplicate-strategy", adding_strategy(id="s1"), "strategies[1].id"),
    ("unknown-venue", strategy(venue="nope"), "strategies[0].venue"),
    ("env-as-venue-ref", strategy(venue="${TN_API_SECRET}"), "strategies[0].venue"),
    ("unknown-paper-symbol", strategy(symbols=["DOGEUSDT"]), "strategies[0].symbols"),
    ("env-as-symbol", strategy(symbols=["BTCUSDT", "${TN_API_SECRET}"]), "strategies[0].symbols"),
    (
        "unknown-binance-symbol",
        adding_strategy(venue="bin", symbols=["ETHUSDT"]),
        "strategies[1].symbols",
    ),
    # strategy kinds that do not resolve
    ("kind-without-module", strategy(kind="tradenode_no_such_pkg.mod:Trend"), "strategies[0].kind"),
    ("kind-without-class", strategy(kind="tradenode.actors:NoSuchStrategy"), "strategies[0].kind"),
    ("kind-not-a-strategy", strategy(kind="tradenode:NodeConfig"), "strategies[0].kind"),
    ("kind-not-an-import-path", strategy(kind="exampel"), "strategies[0].kind"),
    ("env-as-kind", strategy(kind="${TN_API_SECRET}"), "strategies[0].kind"),
    ("env-in-kind-module", strategy(kind="pkg_${TN_API_SECRET}:X"), "strategies[0].kind"),
    # JournalConfig's model validator
    ("journal-fsync", top("journal", {"path": "j", "fsync": "sometimes"}), "journal.fsync"),
    ("env-as-fsync", top("journal", {"path": "j", "fsync": "${TN_API_SECRET}"}), "journal.fsync"),
    # interpolation
    ("unset-variable", setting("api_secret", "${TN_UNSET}"), f"{BIN}.api_secret"),
]


def assert_no_secret(error: ConfigError) -> None:
    texts = {
        "str": str(error),
        "repr": repr(error),
        "key": str(error.key),
        "traceback": "".join(traceback.format_exception(error)),
    }
    for where, text in texts.items():
        for secret in SECRETS:
            assert secret not in text, f"{where} shows a secret: {text}"
    assert "\n" not in str(error)


def test_the_base_config_is_valid() -> None:
    config = parse_config(yaml.safe_dump(base()), environ=ENVIRON)
    assert config.venues[1].settings is not None
    assert config.venues[1].settings.api_secret.get_secret_value() == ENVIRON["TN_API_SECRET"]


@pytest.mark.parametrize(("change", "key"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_no_config_error_shows_a_secret(change: Change, key: str) -> None:
    config = copy.deepcopy(base())
    change(config)
    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_dump(config), environ=ENVIRON)
    assert_no_secret(caught.value)
    assert caught.value.key is not None and caught.value.key.startswith(key), caught.value
    assert f"config key {caught.value.key}: " in str(caught.value)


@pytest.mark.parametrize(
    "text",
    [
        f'venues:\n  - name: bin\n    binance:\n      api_secret: "{LITERAL_SECRET}\n',
        f"venues:\n  - name: bin\n    binance:\n\tapi_secret: {LITERAL_SECRET}\n",
        f"api_secret: {LITERAL_SECRET}: x\n",
        f"api_secret: [{LITERAL_SECRET}\n",
        f"api_secret: !secret {LITERAL_SECRET}\n",
        f'api_secret: "{LITERAL_SECRET}\\q"\n',
        "- ${TN_API_SECRET}\n",
    ],
    ids=[
        "unclosed-quote",
        "tab",
        "mapping-value",
        "unclosed-list",
        "tag",
        "escape",
        "not-a-mapping",
    ],
)
def test_no_yaml_error_shows_the_offending_line(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ=ENVIRON)
    assert_no_secret(caught.value)


def test_yaml_errors_still_say_where() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(f'node:\n  name: "{LITERAL_SECRET}\n')
    message = str(caught.value)
    assert "not valid YAML" in message and "line 2, column 9" in message, message
    assert LITERAL_SECRET not in message


def test_values_of_plain_keys_are_still_shown() -> None:
    with pytest.raises(ConfigError, match=r"config key node\.seed: .* \(got 'soon'\)$"):
        parse_config("node: {seed: soon}\n")
    with pytest.raises(ConfigError) as caught:
        parse_config("node: {seed: '${SEED}'}\n", environ={"SEED": "soon"})
    assert "soon" not in str(caught.value), "a value from the environment is never shown"


def test_validators_name_the_value_when_it_is_not_from_the_environment() -> None:
    with pytest.raises(
        ConfigError, match=r"strategies\[0\]\.symbols: venue paper does not trade DOGEUSDT"
    ):
        parse_config(
            "venues: [{name: paper}]\nstrategies: [{id: s1, symbols: [BTCUSDT, DOGEUSDT]}]\n"
        )


def test_a_binance_venue_without_symbols_takes_any_symbol() -> None:
    """Only the exchange knows what it lists: nothing to check against."""
    text = (
        "venues:\n  - {name: bin, kind: binance, binance: {api_key: k, api_secret: s}}\n"
        "strategies: [{id: s1, venue: bin, symbols: [DOGEUSDT]}]\n"
    )
    assert parse_config(text).strategies[0].symbols == ("DOGEUSDT",)


def test_a_breaker_timeout_shorter_than_the_acceptance_window_is_refused_naming_both_keys() -> None:
    text = """
venues:
  - name: bin
    kind: binance
    binance:
      environment: testnet
      api_key: k
      api_secret: s
      recv_window_ms: 8000
    breaker: {request_timeout: 5}
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    message = str(caught.value)
    assert caught.value.key == "venues[0].breaker.request_timeout"
    assert "breaker.request_timeout" in message and "recv_window_ms" in message
    accepted = parse_config(text.replace("request_timeout: 5", "request_timeout: 8"))
    assert accepted.venues[0].breaker.request_timeout == 8
