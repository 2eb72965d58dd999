"""The web dashboard: in headless Chromium (Selenium), and its event stream over HTTP.

A node on the paper venue serves its control API on an ephemeral loopback
port; Debian's Chromium loads the dashboard from it, shows a fill pushed by
server-sent events, refuses a wrong token and halts the node with the right
one. The screenshot is kept in ``tmp_path`` (and copied to the directory
``TRADENODE_ARTIFACTS`` names, when it names one). Without Chromium and its
driver the browser test skips, saying how to install them (``.ci/run`` does).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tradenode import Node, parse_config
from tradenode.actors import GetRiskStatus
from tradenode.control import ControlConfig

# Internals: a remote bind's app served on a loopback port (no socket beyond it), and
# the display rounding, which is private to the dashboard.
from tradenode.control._app import ControlApp
from tradenode.control._dashboard import Precision
from tradenode.control._server import ControlServerRunner
from tradenode.messages import OrderFilled, OrderStatus, Side
from tradenode.supervision import ManualClock

from ._node_helpers import Harness

TOKEN = "tok-dash-0123456789abcdef"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
STATIC = Path(__file__).resolve().parents[1] / "src" / "tradenode" / "control" / "_static"

CONFIG = """
node: {{name: dashnode, seed: 7, intensity: {{max_restarts: 20, within_seconds: 60}}}}
venues:
  - {{name: paper, paper: {{tick_interval_ms: 1000}}}}
oms: {{ack_timeout: 30}}
journal: {{path: {journal}, fsync: none, snapshot_every: 100000}}
risk:
  instruments:
    BTCUSDT: {{tick_size: "0.01", lot_size: "0.001"}}
alerts: {{rules: [{{kind: kill_switch, severity: critical}}]}}
control:
  enabled: true
  port: 0
  tokens: {{ops: "${{DASH_TOKEN}}"}}
"""


@contextmanager
def _running(tmp_path: Path, clock: ManualClock, extra: str = "") -> Iterator[Harness]:
    text = CONFIG.format(journal=tmp_path / "journal") + extra
    node = Node(parse_config(text, environ={"DASH_TOKEN": TOKEN}), clock=clock)
    node.start()
    try:
        yield Harness(node, clock)
    finally:
        node.stop(timeout=20)


@pytest.fixture
def h(tmp_path: Path, clock: ManualClock) -> Iterator[Harness]:
    with _running(tmp_path, clock) as harness:
        yield harness


def _url(h: Harness) -> str:
    assert h.node.control_url is not None
    return h.node.control_url


def _trading_state(h: Harness) -> str:
    return str(h.node.risk.ask(GetRiskStatus(), 10)["state"])


def _submit(h: Harness, quantity: str) -> str:
    """A market buy through the node (a strategy's order); its client order id."""
    coid = h.do(lambda ctx: ctx.submit_order("BTCUSDT", Side.BUY, Decimal(quantity), venue="paper"))
    assert isinstance(coid, str)
    return coid


def _buy(h: Harness, quantity: str) -> OrderFilled:
    coid = _submit(h, quantity)
    (fill,) = h.wait_for(OrderFilled, coid)
    assert isinstance(fill, OrderFilled)
    return fill


def _first_snapshot(h: Harness, **headers: str) -> dict[str, Any]:
    """The first snapshot event of ``/v1/events``, read as an SSE client reads it."""
    with (
        httpx.Client(base_url=_url(h), timeout=30, headers=headers) as client,
        client.stream("GET", "/v1/events") as answer,
    ):
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        block: list[str] = []
        for line in answer.iter_lines():
            if line:
                block.append(line)
                continue
            if any(entry.startswith("event: snapshot") for entry in block):
                data = [
                    entry.removeprefix("data: ") for entry in block if entry.startswith("data:")
                ]
                snapshot: dict[str, Any] = json.loads("\n".join(data))
                return snapshot
            block = []
    raise AssertionError("the stream ended before a snapshot")


# -- the stream and the page over plain HTTP --------------------------------------------


def test_the_event_stream_pushes_a_rounded_snapshot_of_the_node(h: Harness) -> None:
    fill = _buy(h, "0.1")
    h.sync()
    snapshot = _first_snapshot(h)
    assert snapshot["node"] == "dashnode"
    assert snapshot["trading_state"] == "ACTIVE"
    assert [f["client_order_id"] for f in snapshot["fills"]] == [fill.client_order_id]
    shown = snapshot["fills"][0]
    # Prices to the tick (0.01), quantities to the lot: the paper venue's own (0.0001, in
    # its status), which wins over the config's risk.instruments copy (0.001).
    assert snapshot["instruments"]["paper"]["BTCUSDT"] == {
        "price_increment": "0.01",
        "size_increment": "0.0001",
    }
    assert shown["price"] == str(fill.last_price.quantize(Decimal("0.01")))
    assert shown["quantity"] == "0.1000"
    assert [(p["symbol"], p["quantity"]) for p in snapshot["positions"]] == [("BTCUSDT", "0.1000")]
    assert [(o["client_order_id"], o["status"]) for o in snapshot["orders"]] == [
        (fill.client_order_id, "FILLED")
    ]
    assert snapshot["breakers"]["paper"]["state"] == "closed"
    assert snapshot["tree"]["name"] == "dashnode" and "restarts" in snapshot["tree"]
    assert snapshot["approvals"] == []
    assert re.fullmatch(r"-?\d+\.\d\d", snapshot["pnl"]["total"])
    assert snapshot["pnl"]["history"][-1][1] == snapshot["pnl"]["total"]
    assert TOKEN not in json.dumps(snapshot)


def test_the_page_and_its_assets_are_served_and_load_nothing_from_elsewhere(h: Harness) -> None:
    with httpx.Client(base_url=_url(h), timeout=30) as client:
        root = client.get("/", follow_redirects=False)
        assert root.status_code == 307 and root.headers["location"] == "/dashboard"
        page = client.get("/dashboard")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["content-security-policy"]
        for asset, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
            answer = client.get(f"/dashboard/{asset}")
            assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
            assert answer.content == (STATIC / asset).read_bytes()
    for asset in STATIC.iterdir():
        text = asset.read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), asset


def test_off_loopback_the_stream_needs_a_token_like_every_read(h: Harness) -> None:
    """A remote bind's app, served on a loopback port here (nothing binds beyond it)."""
    remote = ControlConfig(
        enabled=True, host="0.0.0.0", allow_remote=True, tokens={"ops": SecretStr(TOKEN)}
    )
    app = ControlApp(h.node, remote)
    runner = ControlServerRunner(app.asgi, host="127.0.0.1", port=0).start()
    try:
        with httpx.Client(base_url=f"http://{runner.bound}", timeout=30) as client:
            assert client.get("/v1/events").status_code == 401
            wrong = client.get("/v1/events", headers={"Authorization": "Bearer wrong-" + TOKEN})
            assert wrong.status_code == 403 and wrong.json()["error"] == "forbidden"
            assert client.get("/v1/snapshot").status_code == 401
            answer = client.get("/v1/snapshot", headers={"Authorization": f"Bearer {TOKEN}"})
            assert answer.status_code == 200 and answer.json()["node"] == "dashnode"
            # The page itself holds no data: it loads, then asks for the token.
            assert client.get("/dashboard").status_code == 200
        assert app.refused == {"unauthorized": 2, "forbidden": 1}
    finally:
        app.close()
        runner.stop()


@pytest.mark.parametrize(
    ("symbol", "price", "quantity", "shown_price", "shown_quantity"),
    [
        ("BTCUSDT", "43210.123456789012345678901234", "0.12345678901", "43210.12", "0.123"),
        ("OTHER", "43210.123456789012345678901234", "0.12345678901", "43210.12", "0.12345679"),
        ("OTHER", "0.000012345678901234567", "3", "0.000012345679", "3"),
        ("OTHER", "0", "-0.0000000001", "0.00", "0"),
    ],
)
def test_numbers_are_rounded_to_the_instrument_or_a_sane_default(
    symbol: str, price: str, quantity: str, shown_price: str, shown_quantity: str
) -> None:
    precision = Precision({"BTCUSDT": (Decimal("0.01"), Decimal("0.001"))})
    assert precision.price(symbol, Decimal(price)) == shown_price
    assert precision.quantity(symbol, Decimal(quantity)) == shown_quantity
    assert Precision.money(Decimal("-0.0001")) == "0.00"
    assert Precision.money(Decimal("12.345000000000000001")) == "12.35"


# -- the browser ------------------------------------------------------------------------


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("no Chromium: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1100",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_in_chromium_a_fill_shows_live_and_the_kill_switch_halts_the_node(
    h: Harness, browser: Any, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30)

    def text_of(element_id: str) -> str:
        return str(browser.find_element(By.ID, element_id).text)

    def wait_text(element_id: str, wanted: str) -> None:
        wait.until(lambda _: wanted in text_of(element_id), f"#{element_id} never showed {wanted}")

    def click_and_answer(button: str, *, accept: bool) -> None:
        browser.find_element(By.ID, button).click()
        alert = wait.until(expected_conditions.alert_is_present())
        if accept:
            alert.accept()
        else:
            alert.dismiss()

    def type_token(token: str) -> None:
        field = browser.find_element(By.ID, "token")
        field.clear()
        field.send_keys(token)

    browser.get(_url(h) + "/")
    wait_text("node-name", "dashnode")
    wait_text("conn", "live")
    wait_text("trading-state", "ACTIVE")
    assert text_of("fills").count("\n") == 0  # the header row only

    # A fill on the paper venue reaches the page by itself (pushed, no reload).
    fill = _buy(h, "0.25")
    wait_text("fills", fill.client_order_id)
    row = browser.find_element(By.CSS_SELECTOR, f'#fills tr[data-key="{fill.execution_id}"]')
    assert str(fill.last_price.quantize(Decimal("0.01"))) in row.text
    assert "0.250" in row.text
    wait_text("positions", "0.250")

    # Not confirmed: nothing is sent.
    type_token(TOKEN)
    click_and_answer("kill", accept=False)
    wait_text("action-result", "not confirmed")
    # A wrong token: refused, shown, and nothing changes.
    type_token("wrong-" + TOKEN)
    click_and_answer("kill", accept=True)
    wait_text("action-result", "refused 403 forbidden")
    assert _trading_state(h) == "ACTIVE"
    assert h.node.control is not None and list(h.node.control.app.audit) == []

    # The right token, confirmed: the node halts, and the page says so.
    type_token(TOKEN)
    assert browser.execute_script("return sessionStorage.getItem('tradenode.token')") == TOKEN
    click_and_answer("kill", accept=True)
    wait_text("action-result", "kill: done")
    assert _trading_state(h) == "HALTED"
    wait_text("trading-state", "HALTED")
    wait_text("alerts", "kill_switch [critical] kill switch engaged")
    assert [(a.who, a.action, a.result[:2]) for a in h.node.control.app.audit] == [
        ("ops", "kill-switch", "ok")
    ]

    shot = tmp_path / "dashboard.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 0
    artifacts = os.environ.get("TRADENODE_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(artifacts) / "dashboard.png")

    # Resume and halt: the same confirm step, the same audited endpoint.
    click_and_answer("resume", accept=True)
    wait_text("action-result", "resume: done")
    assert _trading_state(h) == "ACTIVE"
    wait_text("trading-state", "ACTIVE")
    click_and_answer("halt", accept=True)
    wait_text("action-result", "halt: done")
    assert _trading_state(h) == "HALTED"
    assert [a.action for a in h.node.control.app.audit] == [
        "kill-switch",
        "trading-state",
        "trading-state",
    ]


def test_in_chromium_pending_orders_are_approved_and_rejected(
    tmp_path: Path, clock: ManualClock, browser: Any
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))

    def text_of(element_id: str) -> str:
        return str(browser.find_element(By.ID, element_id).text)

    def decide(order: str, verdict: str) -> None:
        # The table is re-rendered on every push: find the row's button afresh.
        selector = f'#approvals tr[data-key="{order}"] button.{verdict}'
        wait.until(lambda d: d.find_element(By.CSS_SELECTOR, selector).click() or True)
        wait.until(expected_conditions.alert_is_present()).accept()
        wait.until(lambda _: f"{verdict} {order}: done" in text_of("action-result"))

    with _running(tmp_path, clock, "execution_mode: MANUAL\n") as h:
        browser.get(_url(h) + "/dashboard")
        wait.until(lambda _: "live" in text_of("conn"))
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        first, second = _submit(h, "0.1"), _submit(h, "0.2")
        wait.until(lambda _: first in text_of("approvals") and second in text_of("approvals"))
        decide(first, "approve")
        h.wait_status(first, OrderStatus.FILLED)
        decide(second, "reject")
        wait.until(
            lambda _: first not in text_of("approvals") and second not in text_of("approvals")
        )
        wait.until(lambda _: first in text_of("fills"))
        assert h.node.pending_approvals() == ()
        assert h.position("BTCUSDT") == Decimal("0.1")
        assert h.node.control is not None
        assert [(a.who, a.action) for a in h.node.control.app.audit] == [
            ("ops", "approve"),
            ("ops", "reject"),
        ]
