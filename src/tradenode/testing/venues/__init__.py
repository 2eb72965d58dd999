"""Local fake venues that speak the real wire protocols, for tests and rehearsals.

:class:`BinanceVenue` is Binance Spot on loopback sockets: the REST API under
``/api/v3/`` (orders, account, and the public market data: depth, trades,
aggTrades, klines, avgPrice, 24 h and price/book tickers), the wallet's
``GET /sapi/v1/asset/tradeFee``, the WebSocket API at ``/ws-api/v3`` (with
``session.logon``/``status``/``logout`` for Ed25519 keys and user data
stream subscriptions), market streams at ``/ws/<stream>`` and
``/stream?streams=a/b`` (``<symbol>@bookTicker``, ``@trade``,
``@kline_<interval>``, ``@depth``, ``@depth<levels>``), and the legacy
listenKey user stream. Behind it runs the deterministic matching simulator
(:class:`tradenode.sim.MatchingSimulator`); prices move only when told
(:meth:`BinanceVenue.step`, :meth:`BinanceVenue.set_price`, the admin
endpoint, or ``tick_interval``). Binance's own client libraries work against
it unchanged but for the base URL::

    from binance.spot import Spot

    with BinanceVenue(seed=7) as venue:
        client = Spot(api_key=venue.api_key, api_secret=DEFAULT_API_SECRET,
                      base_url=venue.rest_url)
        client.new_order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01")
        venue.set_price("BTCUSDT", Decimal("51000"))

In pytest, a fixture per test keeps venues independent::

    @pytest.fixture
    def venue() -> Iterator[BinanceVenue]:
        with BinanceVenue(seed=1, clock=lambda: 1_700_000_000_000) as venue:
            yield venue

Knobs (Python methods, and ``POST <admin_url>/<knob>`` with a JSON object on
a separate admin port that stays up while the venue is down): ``step``,
``set_price``, ``freeze_prices``, ``deposit``, ``drop_streams``, ``down``/``up``,
``delay_requests``, ``fail_requests`` (before or after processing),
``rate_limit`` (429), ``ban`` (418), ``clear_faults``, ``duplicate_events``,
``reorder_events``/``release_events``, ``corrupt_next_event``,
``mangle_answers`` (a 200 answer the client cannot read),
``terminate_user_streams`` (``eventStreamTerminated``), ``server_shutdown``,
``expire_listen_key``. Knobs that touch connections (``drop_streams``,
``down``, ``up``, ``terminate_user_streams``, ``server_shutdown``,
``expire_listen_key``, ``release_events``) block until done; from inside a
trio task call them through ``trio.to_thread.run_sync``.
Inspection: ``balances()``, ``orders()``, ``trades()`` and ``submissions()``
(how many placement requests named each clientOrderId), also as
``GET <admin_url>/state``; ``calls()`` counts requests per endpoint.

The default account key and secret are :data:`DEFAULT_API_KEY` and
:data:`DEFAULT_API_SECRET`; the default balances :data:`DEFAULT_BALANCES`.
Ed25519 keys (Binance's recommended kind, the only one ``session.logon``
takes) are registered by their public key::

    BinanceVenue(ed25519_public_keys={"my-ed25519-key": public_key_pem})
The standalone server is ``tradenode venue binance`` (see ``--help``).

:class:`OandaVenue` is an OANDA v20 account on loopback: the REST API under
``/v3/accounts/...`` (orders, trades, positions, transactions, pricing,
summary, instruments) and both NDJSON streams (``transactions/stream``,
``pricing/stream``) on one port, behind the same simulator's prices. OANDA's
clients work against it unchanged: oandapyV20 through its
``TRADING_ENVIRONMENTS`` table, OANDA's own ``v20`` through
``v20.Context(host, port, ssl=False, token=...)``::

    import oandapyV20.oandapyV20 as core

    with OandaVenue(seed=1, heartbeat_interval=0.1) as venue:
        core.TRADING_ENVIRONMENTS["fake"] = {"api": venue.rest_url, "stream": venue.stream_url}
        api = oandapyV20.API(access_token=venue.token, environment="fake")

Its knobs (``stall_streams``, ``drop_streams``, ``rate_limit``,
``fail_requests``, ``lose_next_response``,
``hold_requests``/``release_requests``, ``duplicate_transactions``,
``corrupt_next_line``, ``cross_next_price``, ``corrupt_next_answer``,
``hold_fills``/``release_fills``, ``down``/``up``, ...) follow the Binance fake's pattern; the account id and token default to
:data:`DEFAULT_OANDA_ACCOUNT_ID` and :data:`DEFAULT_OANDA_TOKEN`.

:class:`IbkrVenue` is a local TWS / IB Gateway: the TWS API socket protocol
itself on one loopback TCP port (handshake with version negotiation, server
versions 176 to 178, startApi, nextValidId, managedAccounts, contract
details, placeOrder/cancelOrder/reqGlobalCancel, openOrder, orderStatus,
execDetails, commissionReport, positions, account values and summary,
market data ticks), one account (:data:`DEFAULT_IBKR_ACCOUNT`) trading the
:func:`default_ibkr_contracts` (stocks, EUR.USD, the ES future, an AAPL
option) behind the same simulator. IB's clients connect unchanged::

    with IbkrVenue(seed=1) as venue:
        ib = ib_async.IB()
        ib.connect(venue.host, venue.port, clientId=1)

Its knobs: ``set_price``, ``step``, ``drop_connections``,
``connectivity_lost``/``connectivity_restored`` (1100, then 1101/1102),
``duplicate_executions``, ``hold_executions``/``release_executions``,
``correct_execution`` (IB's execId-suffix correction), ``pacing_violation``
(error 100), ``delay_orders``/``release_orders``, ``refuse_next_order``,
``lose_next_order_answer``, ``place_order`` (another client's order),
``corrupt_next_message``, ``down``/``up``, ``clear_faults``; inspection:
``orders()``, ``fills()``, ``positions()``, ``submissions()``,
``placements()``, ``account_values()``. IB's official Python API
(``ibapi`` 10.x), ib_async and ib_insync work against it unchanged.

:class:`OkxVenue` is an OKX v5 trading account on loopback: REST under
``/api/v5/`` (instruments, time, tickers, books; place, batch place, cancel,
batch cancel, amend, order details, orders-pending/-history, fills/-history,
balance) signed with the ``OK-ACCESS-*`` headers and a passphrase, the public
WebSocket (``tickers``, ``bbo-tbt``) and the private one (``login``, the
``orders`` channel, ``op`` order/batch-orders/cancel-order/amend-order),
text ``ping``/``pong`` and OKX's 30 s idle close, behind the same simulator
(instIds ``BTC-USDT``, ``ETH-USDT``, ``SOL-USDT``). python-okx and ccxt work
against it unchanged but for the base URL::

    with OkxVenue(seed=1) as venue:
        trade = okx.Trade.TradeAPI(venue.api_key, venue.secret, venue.passphrase,
                                   flag="1", domain=venue.rest_url)

(python-okx's WebSocket classes always ask for TLS: ``OkxVenue(tls=True)``
serves HTTPS/WSS with a throwaway CA, :attr:`OkxVenue.ca_file`.)

Its knobs: ``set_price``, ``step``, ``drop_streams``, ``down``/``up``,
``rate_limit`` (429, 50011), ``fail_requests`` (5xx, or processed with the
answer lost), ``duplicate_events``, ``reorder_events``/``release_events``,
``drop_events`` (a gap), ``corrupt_next_event``, ``corrupt_next_fill``,
``corrupt_next_quote``, ``corrupt_next_answer``, ``hold_fills``/``release_fills``,
``refuse_next_order``, ``clear_faults``, and OKX's own per-2 s limits with
``rate_limits=True``; inspection: ``orders()``, ``fills()``,
``balances()``, ``submissions()``, ``calls()``. The account's
credentials default to :data:`DEFAULT_OKX_API_KEY`,
:data:`DEFAULT_OKX_SECRET` and :data:`DEFAULT_OKX_PASSPHRASE`.

:class:`CoinbaseVenue` is a Coinbase Advanced Trade account on loopback:
REST under ``/api/v3/brokerage/`` (orders with ``order_configuration``
market IOC, limit GTC/GTD/FOK with post-only, SOR limit IOC, stop-limit
GTC/GTD; ``orders/batch_cancel``, ``orders/edit``, historical orders and
fills with cursors, accounts, products, best bid/ask, server time), every
request authenticated by a CDP key's ES256 (or EdDSA) JWT that the venue
verifies against registered public keys (bad or expired: 401), and the
WebSocket endpoints ``/ws`` (market data) and ``/ws/user`` with the
``user``, ``heartbeats``, ``ticker`` and ``level2`` channels, numbered by
``sequence_num`` per connection, behind the same simulator (BTC-USD,
ETH-USD). Coinbase's SDK and ccxt work against it unchanged but for the base
URL (both need HTTPS: ``tls=True`` serves it with a throwaway CA,
:attr:`CoinbaseVenue.ca_file`)::

    with CoinbaseVenue(seed=1, tls=True) as venue:
        os.environ["REQUESTS_CA_BUNDLE"] = venue.ca_file  # trust the venue's CA
        client = RESTClient(api_key=venue.key.name, api_secret=venue.key.private_key_pem,
                            base_url=venue.rest_url.removeprefix("https://"))

Keys: ``CoinbaseVenue(api_keys={name: public_pem})``, or none and the venue
makes one (:attr:`CoinbaseVenue.key`, a :class:`CdpKey`);
:func:`generate_cdp_key` makes a key pair. Its knobs: ``set_price``,
``step``, ``drop_streams``, ``down``/``up``, ``rate_limit`` (429 with
Retry-After), ``fail_requests`` (5xx before or after processing, or the
answer lost), ``duplicate_events``, ``reorder_events``/``release_events``,
``skip_sequence`` (a sequence gap), ``corrupt_next_event``,
``hold_fills``/``release_fills``, ``clear_faults``; inspection: ``orders()``,
``fills()``, ``balances()``, ``submissions()``, ``calls()``.

:class:`AlpacaVenue` is an Alpaca paper account on loopback: the Trading API
v2 under ``/v2/`` (account, assets, clock, calendar, orders with
``client_order_id`` and ``orders:by_client_order_id``, replace by PATCH (a new
order id), cancel (204) and cancel-all (207), positions and close-position,
``account/activities/FILL``) behind the ``APCA-API-KEY-ID``/``APCA-API-SECRET-KEY``
headers, the ``trade_updates`` stream at ``/stream`` (binary frames as on
paper) and the stock market-data stream at ``/v2/{iex,sip,delayed_sip,test}``
(JSON, or MessagePack as alpaca-py asks), behind the same simulator (AAPL,
MSFT, SPY fractionable; SIRI whole shares) and a simulated New York market
clock (orders outside their session are queued, DAY orders expire at the
close; :meth:`AlpacaVenue.set_market_open`, :meth:`AlpacaVenue.set_time`).
alpaca-py works against it unchanged but for the URLs::

    with AlpacaVenue(seed=1) as venue:
        venue.set_market_open(True)
        client = TradingClient(venue.api_key, venue.secret, url_override=venue.rest_url)
        stream = TradingStream(venue.api_key, venue.secret, url_override=venue.stream_url)
        data = StockDataStream(venue.api_key, venue.secret,
                               url_override=venue.data_stream_url("iex"))

Its knobs: ``set_price``, ``step``, ``publish_bar``, ``set_market_open``,
``set_time``, ``drop_streams``, ``down``/``up``, ``rate_limit`` (429 with
``X-Ratelimit-*``), ``fail_requests`` (5xx, or processed with the answer
lost), ``delay_requests`` (held placements), ``refuse_next_order``,
``fail_cancel_all_for`` (per-order 500s in the 207), ``race_next_replace`` (the
old order fills first, the new one is rejected), ``duplicate_events``,
``drop_events``, ``reorder_events``/``release_events``, ``corrupt_next_event``,
``corrupt_next_fills``, ``hold_fills``/``release_fills``, ``place_order``/``cancel_order`` (another
client), ``clear_faults``; inspection: ``orders()``, ``fills()``,
``positions()``, ``balances()``, ``submissions()``, ``calls()``,
``trade_listeners()``, ``data_subscribers()``, ``wait_for()``. The account's
credentials default to :data:`DEFAULT_ALPACA_API_KEY` and
:data:`DEFAULT_ALPACA_SECRET`.
"""

from tradenode.testing.venues._alpaca_exchange import (
    DEFAULT_ALPACA_API_KEY,
    DEFAULT_ALPACA_SECRET,
    AlpacaFillInfo,
    AlpacaOrderInfo,
    alpaca_sim_config,
    default_alpaca_instruments,
)
from tradenode.testing.venues._alpaca_server import DEFAULT_ALPACA_CASH, AlpacaVenue
from tradenode.testing.venues._binance_exchange import (
    DEFAULT_API_KEY,
    DEFAULT_API_SECRET,
    BinanceError,
    BinanceExchange,
    OrderInfo,
    TradeInfo,
    rest_signature,
    ws_signature,
    ws_signature_payload,
)
from tradenode.testing.venues._binance_server import (
    DEFAULT_BALANCES,
    BinanceVenue,
    default_binance_config,
)
from tradenode.testing.venues._coinbase_exchange import (
    DEFAULT_COINBASE_BALANCES,
    CoinbaseFillInfo,
    CoinbaseOrderInfo,
    default_coinbase_config,
)
from tradenode.testing.venues._coinbase_keys import CdpKey, generate_cdp_key
from tradenode.testing.venues._coinbase_server import CoinbaseVenue
from tradenode.testing.venues._ibkr_exchange import (
    DEFAULT_IBKR_ACCOUNT,
    IbkrContract,
    default_ibkr_contracts,
)
from tradenode.testing.venues._ibkr_server import IbkrVenue
from tradenode.testing.venues._oanda_exchange import DEFAULT_OANDA_ACCOUNT_ID, DEFAULT_OANDA_TOKEN
from tradenode.testing.venues._oanda_server import OandaVenue
from tradenode.testing.venues._okx_exchange import (
    DEFAULT_OKX_API_KEY,
    DEFAULT_OKX_PASSPHRASE,
    DEFAULT_OKX_SECRET,
    OkxFillInfo,
    OkxOrderInfo,
)
from tradenode.testing.venues._okx_server import OkxVenue, default_okx_config

__all__ = [
    "DEFAULT_ALPACA_API_KEY",
    "DEFAULT_ALPACA_CASH",
    "DEFAULT_ALPACA_SECRET",
    "DEFAULT_API_KEY",
    "DEFAULT_API_SECRET",
    "DEFAULT_BALANCES",
    "DEFAULT_COINBASE_BALANCES",
    "DEFAULT_IBKR_ACCOUNT",
    "DEFAULT_OANDA_ACCOUNT_ID",
    "DEFAULT_OANDA_TOKEN",
    "DEFAULT_OKX_API_KEY",
    "DEFAULT_OKX_PASSPHRASE",
    "DEFAULT_OKX_SECRET",
    "AlpacaFillInfo",
    "AlpacaOrderInfo",
    "AlpacaVenue",
    "BinanceError",
    "BinanceExchange",
    "BinanceVenue",
    "CdpKey",
    "CoinbaseFillInfo",
    "CoinbaseOrderInfo",
    "CoinbaseVenue",
    "IbkrContract",
    "IbkrVenue",
    "OandaVenue",
    "OkxFillInfo",
    "OkxOrderInfo",
    "OkxVenue",
    "OrderInfo",
    "TradeInfo",
    "alpaca_sim_config",
    "default_alpaca_instruments",
    "default_binance_config",
    "default_coinbase_config",
    "default_ibkr_contracts",
    "default_okx_config",
    "generate_cdp_key",
    "rest_signature",
    "ws_signature",
    "ws_signature_payload",
]
