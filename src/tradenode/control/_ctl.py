"""``tradenode ctl``: the control API from the shell, against a running node.

The node is found by ``--url`` or by its config (``control.url_file``, else the
file beside its journal that the node writes on start). A URL is
``http://host:port``, ``https://host:port`` (verified against ``--cacert`` when
the node's certificate is not from a CA the system trusts) or ``unix:<path>``
(the node's ``control.unix_socket``). The token comes from the environment
(``--token-env``, default ``TRADENODE_TOKEN``), never from the command line,
where ``ps`` would show it. Output is a plain table; ``--json`` prints the
API's answer as it is.
"""

from __future__ import annotations

import json
import os
import re
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import httpx
import yaml

from ._cli_options import cacert_option

__all__ = ["ControlClient", "ctl", "resolve_control_url"]

_TIMEOUT = 60.0


class ControlClient:
    """Calls one node's control API; an error answer is a ``ClickException`` with its
    status, code and message (``tradenode ctl`` and ``tradenode approvals`` use it)."""

    def __init__(
        self,
        url: str | Callable[[], str],
        token: str | None,
        as_json: bool,
        *,
        ca_file: str | None = None,
    ) -> None:
        self._url = url if callable(url) else url.rstrip("/")
        """The URL, or how to find it on first use (``ctl <command> --help`` needs none)."""
        self.token = token
        self.as_json = as_json
        self.ca_file = ca_file
        """A CA bundle (PEM) to verify an ``https://`` node's certificate with."""

    @property
    def url(self) -> str:
        if callable(self._url):
            self._url = self._url().rstrip("/")
        return self._url

    def _client(self) -> httpx.Client:
        """An HTTP client for the node: over its Unix socket for ``unix:<path>``."""
        if self.url.startswith("unix:"):
            transport = httpx.HTTPTransport(uds=self.url.removeprefix("unix:"))
            return httpx.Client(transport=transport, base_url="http://localhost", timeout=_TIMEOUT)
        verify: ssl.SSLContext | bool = True
        if self.ca_file is not None:
            try:
                verify = ssl.create_default_context(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise click.ClickException(
                    f"cannot read the CA file {self.ca_file}: {type(exc).__name__}"
                ) from None
        return httpx.Client(base_url=self.url, verify=verify, timeout=_TIMEOUT)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {} if self.token is None else {"Authorization": f"Bearer {self.token}"}
        try:
            with self._client() as client:
                answer = client.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise click.ClickException(
                f"cannot reach the node's control API at {self.url}: {type(exc).__name__}"
            ) from None
        try:
            data = answer.json()
        except ValueError:
            raise click.ClickException(f"{method} {path}: HTTP {answer.status_code}") from None
        if answer.status_code >= 400:
            error = data if isinstance(data, dict) else {}
            raise click.ClickException(
                f"{method} {path}: HTTP {answer.status_code} "
                f"{error.get('error', '?')}: {error.get('message', '')}"
            )
        return data


def resolve_control_url(url: str | None, config: str | None) -> str:
    """``url``, else the URL the running node of ``config`` wrote beside its journal."""
    if url:
        return url
    if config is None:
        raise click.UsageError("give --url, or --config of the running node")
    where = _url_file_in(Path(config))
    try:
        found = json.loads(where.read_text(encoding="utf-8"))["url"]
    except (OSError, ValueError, KeyError, TypeError):
        raise click.ClickException(
            f"no control URL in {where}: is the node running with control.enabled?"
        ) from None
    return str(found)


def _url_file_in(config: Path) -> Path:
    """Where the node of ``config`` writes its URL, from the two keys that say so.

    Not the whole config through validation: that would need every secret it
    takes from the environment (a venue's API key), which the operator's shell
    has no reason to hold.
    """
    try:
        raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise click.ClickException(f"cannot read {config}: {type(exc).__name__}") from None
    raw = raw if isinstance(raw, dict) else {}
    control, journal = raw.get("control"), raw.get("journal")
    control = control if isinstance(control, dict) else {}
    journal = journal if isinstance(journal, dict) else {}
    url_file, journal_path = control.get("url_file"), journal.get("path")
    if isinstance(url_file, str):
        return Path(_expand(url_file))
    if isinstance(journal_path, str):
        # As ``url_file_of`` does for a validated config.
        journal_dir = Path(_expand(journal_path))
        return journal_dir.with_name(journal_dir.name + ".control.json")
    raise click.UsageError(f"{config} has no journal.path nor control.url_file: give --url")


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(text: str) -> str:
    """``${ENV}`` / ``${ENV:-default}`` as the config's interpolation reads them."""

    def value(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise click.UsageError(f"environment variable {name} is not set")

    return _ENV.sub(value, text)


@click.group("ctl")
@click.option(
    "--url",
    help="The control API's URL: http://127.0.0.1:<port>, https://<host>:<port> or "
    "unix:<path> (a Unix socket).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="The running node's config: its control URL is read from the file it wrote.",
)
@click.option(
    "--token-env",
    default="TRADENODE_TOKEN",
    show_default=True,
    help="The environment variable holding the token (actions need one).",
)
@cacert_option
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_context
def ctl(
    ctx: click.Context,
    *,
    url: str | None,
    config_path: str | None,
    token_env: str,
    ca_file: str | None,
    as_json: bool,
) -> None:
    """Read and act on a running node through its control API."""
    token = os.environ.get(token_env) or None
    # Found when a command first calls the node: `ctl <command> --help` needs no node.
    ctx.obj = ControlClient(
        lambda: resolve_control_url(url, config_path), token, as_json, ca_file=ca_file
    )


def _show(target: ControlClient, data: Any, columns: Sequence[str] | None = None) -> None:
    if target.as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    if isinstance(data, list):
        click.echo(_table(data, columns))
    elif isinstance(data, dict) and columns == ("name",):
        rows = [
            {"name": k, **v} if isinstance(v, dict) else {"name": k, "value": v}
            for k, v in data.items()
        ]
        click.echo(_table(rows, None))
    elif isinstance(data, dict):
        width = max((len(str(k)) for k in data), default=0)
        for key, value in data.items():
            text = value if isinstance(value, str) else json.dumps(value)
            click.echo(f"{str(key).ljust(width)}  {text}")
    else:
        click.echo(json.dumps(data))


def _table(rows: list[Any], columns: Sequence[str] | None) -> str:
    if not rows:
        return "(none)"
    if columns is None:
        columns = list(dict.fromkeys(k for row in rows if isinstance(row, dict) for k in row))
    cells = [[_cell(row.get(c)) if isinstance(row, dict) else "" for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _reader(name: str, path: str, columns: Sequence[str] | None, helptext: str) -> None:
    @ctl.command(name, help=helptext)
    @click.pass_obj
    def command(target: ControlClient) -> None:
        _show(target, target.call("GET", path), columns)


_reader("status", "/v1/status", None, "The node's status view (JSON).")
_reader("tree", "/v1/tree", None, "The supervision tree with restart counts.")
_reader(
    "fills",
    "/v1/fills",
    ("client_order_id", "venue", "symbol", "side", "quantity", "price"),
    "Fills the OMS holds.",
)
_reader(
    "positions",
    "/v1/positions",
    ("venue", "symbol", "quantity", "avg_price", "realized_pnl", "unrealized_pnl"),
    "Positions by venue and symbol.",
)
_reader("pnl", "/v1/pnl", None, "Realized and unrealized PnL.")
_reader("breakers", "/v1/breakers", ("name",), "Each venue's circuit breaker and DLQ size.")
_reader("risk", "/v1/risk", None, "The risk guard's state.")
_reader("approvals", "/v1/approvals", None, "Orders waiting for approval.")
_reader("parents", "/v1/parents", None, "Parent orders (execution algorithms).")
_reader("audit", "/v1/audit", ("who", "action", "result"), "Actions taken through the API.")
_reader(
    "alerts",
    "/v1/alerts",
    ("id", "at", "kind", "severity", "venue", "summary", "delivery"),
    "Recent alerts, newest first, and where their delivery to the webhooks stands.",
)


@ctl.command("orders")
@click.option("--venue")
@click.option("--strategy")
@click.option("--state", help="An order status (ACCEPTED, FILLED, ...).")
@click.pass_obj
def orders(
    target: ControlClient, venue: str | None, strategy: str | None, state: str | None
) -> None:
    """Orders: open ones, and closed ones that filled."""
    params = {k: v for k, v in (("venue", venue), ("strategy", strategy), ("state", state)) if v}
    columns = (
        "client_order_id",
        "strategy",
        "venue",
        "symbol",
        "side",
        "quantity",
        "price",
        "status",
        "filled",
        "avg_price",
    )
    _show(target, target.call("GET", "/v1/orders", params=params), columns)


@ctl.command("kill-switch")
@click.option("--flatten", is_flag=True, help="Also close every position.")
@click.pass_obj
def kill_switch(target: ControlClient, flatten: bool) -> None:
    """Halt trading and cancel every open order (and flatten)."""
    _show(target, target.call("POST", "/v1/kill-switch", json={"flatten": flatten}))


def _state_command(name: str, state: str, helptext: str) -> None:
    @ctl.command(name, help=helptext)
    @click.option("--reason", default=None)
    @click.pass_obj
    def command(target: ControlClient, reason: str | None) -> None:
        body = {"state": state, **({"reason": reason} if reason else {})}
        _show(target, target.call("POST", "/v1/trading-state", json=body))


_state_command("halt", "HALTED", "Refuse every new order.")
_state_command("reduce-only", "REDUCING", "Accept only orders that reduce a position.")
_state_command("resume", "ACTIVE", "Trade normally again.")


@ctl.command("mode")
@click.argument("mode", required=False)
@click.option("--strategy", default=None, help="Set this strategy's override (no MODE: drop it).")
@click.pass_obj
def mode(target: ControlClient, mode: str | None, strategy: str | None) -> None:
    """Set the execution mode (FULL_AUTO, SEMI_AUTO, MANUAL, RESEARCH, EMERGENCY)."""
    body = {"mode": mode, **({"strategy": strategy} if strategy else {})}
    _show(target, target.call("POST", "/v1/execution-mode", json=body))


@ctl.group("venue")
def venue() -> None:
    """Add or remove a venue."""


@venue.command("add")
@click.argument("snippet", type=click.File("r"))
@click.pass_obj
def venue_add(target: ControlClient, snippet: Any) -> None:
    """Add a venue from a YAML snippet (a file, or - for stdin): one venues: entry."""
    _show(target, target.call("POST", "/v1/venues", json={"yaml": snippet.read()}))


@venue.command("remove")
@click.argument("name")
@click.pass_obj
def venue_remove(target: ControlClient, name: str) -> None:
    """Disconnect a venue."""
    _show(target, target.call("DELETE", f"/v1/venues/{name}"))


@ctl.group("strategy")
def strategy() -> None:
    """Add or remove a strategy."""


@strategy.command("add")
@click.argument("snippet", type=click.File("r"))
@click.pass_obj
def strategy_add(target: ControlClient, snippet: Any) -> None:
    """Add a strategy from a YAML snippet (one strategies: entry)."""
    _show(target, target.call("POST", "/v1/strategies", json={"yaml": snippet.read()}))


@strategy.command("remove")
@click.argument("strategy_id")
@click.pass_obj
def strategy_remove(target: ControlClient, strategy_id: str) -> None:
    """Stop a strategy."""
    _show(target, target.call("DELETE", f"/v1/strategies/{strategy_id}"))


@ctl.command("dlq-reprocess")
@click.argument("venue_name")
@click.pass_obj
def dlq_reprocess(target: ControlClient, venue_name: str) -> None:
    """Send the orders parked while a venue's circuit was open."""
    _show(target, target.call("POST", "/v1/dlq/reprocess", json={"venue": venue_name}))


@ctl.command("approve")
@click.argument("approval_id")
@click.pass_obj
def approve(target: ControlClient, approval_id: str) -> None:
    """Approve a pending order."""
    _show(target, target.call("POST", f"/v1/approvals/{approval_id}/approve"))


@ctl.command("reject")
@click.argument("approval_id")
@click.option("--reason", default=None)
@click.pass_obj
def reject(target: ControlClient, approval_id: str, reason: str | None) -> None:
    """Reject a pending order."""
    body = {"reason": reason} if reason else {}
    _show(target, target.call("POST", f"/v1/approvals/{approval_id}/reject", json=body))


@ctl.command("snapshot")
@click.pass_obj
def snapshot(target: ControlClient) -> None:
    """Snapshot the OMS journal now."""
    _show(target, target.call("POST", "/v1/journal/snapshot"))
