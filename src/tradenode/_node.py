"""The node: one supervision tree built from a config, started and stopped in order."""

from __future__ import annotations

import functools
import importlib
import logging
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ._config import NodeConfig, StrategyConfig, VenueConfig
from ._execution_config import ExecutionMode, InstrumentMap
from ._gc import GcHold
from ._recovery import RecoveryReport, recover_node, resolve_recovered
from ._registry import get_venue_kind
from ._research import ResearchDesk
from ._status import VenueConnections, books, node_status, render_tree
from .actors._approvals import PendingApproval
from .actors._breaker import BreakerActor, BreakerStore, GetBreakerStats, VenueFailureStats
from .actors._breaker_state import CircuitBreaker, CircuitState, DeadLetterQueue
from .actors._client_ids import ClientOrderIdFamily, base36
from .actors._contract import AcceptanceWindow, BrokerReply, QuoteSubscription
from .actors._control import AcceptBalanceBaseline, EngageKillSwitch, Promise, SetTradingState
from .actors._directory import Directory, VenueEntry
from .actors._example import ExampleStrategy
from .actors._oms import KillSwitchReport, OmsActor, OmsStore
from .actors._oms_journal import OmsJournal
from .actors._oms_parents import GetParent, GetParents, ParentView
from .actors._rate_limit import TokenBucket
from .actors._retry import RetryPolicy
from .actors._risk import RiskGuard, RiskStore, risk_limits_from_config
from .actors._routing import RouterActor, RouterControl, router_store
from .actors._strategy import Strategy, StrategyActor
from .brokers._factory import RecoveredVenue, VenueBuild, VenueContext
from .control._service import ControlServer
from .execution._algorithm import AlgorithmEnv
from .execution._coordinator import ExecutionRuntime, ResumeParents, execution_spec
from .journal import FsyncMode, FsyncPolicy, Journal
from .messages._enums import Side, TradingState
from .messages._execution import AlgoParams, CancelParentOrder, SubmitParentOrder
from .observability import Observability
from .supervision import (
    ActorSystem,
    Address,
    Backoff,
    ChildSpec,
    Clock,
    Intensity,
    SupervisorSpec,
    TreeNode,
    add_child,
    remove_child,
)
from .supervision import (
    Strategy as SupervisionStrategy,
)
from .supervision._scheduling import apply_thread_scheduling

__all__ = ["Node", "RecoveryReport", "VenueConnections", "render_tree"]

logger = logging.getLogger("tradenode.node")

OPERATOR_STRATEGY = "operator"
"""The strategy id of parent orders an operator submits through ``Node.submit_parent``."""


class Node:
    """A supervised tradenode.

    The tree is ``/<name>`` (one_for_one) over ``core`` (rest_for_one: the
    OMS, then the risk guard that depends on it, then the strategies) and
    ``brokers`` (one_for_one: venues fail independently; each venue is a
    rest_for_one subtree of its circuit breaker and its broker actor). Venues
    and strategies are added and removed at runtime; the node owns the
    state that must outlive any actor incarnation (OMS books, risk state,
    breaker state, the paper venues themselves).
    """

    def __init__(self, config: NodeConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config if config is not None else NodeConfig()
        section = self.config.node
        self.system = ActorSystem(
            clock=clock,
            seed=section.seed,
            name=section.name,
            thread_scheduling=section.thread_scheduling,
        )
        self._gc = GcHold(section.gc)
        self._connections = VenueConnections(self.directory_path_prefix(section.name))
        self.system.events.subscribe(self._connections.observe)
        self.clock = self.system.clock
        self.directory = Directory(
            self.system, section.name, InstrumentMap(self.config.instruments)
        )
        recovered = recover_node(
            self.config,
            self.clock,
            thread_setup=functools.partial(apply_thread_scheduling, section.thread_scheduling),
        )
        self.journal: Journal | None = recovered.journal
        self.recovery: RecoveryReport | None = recovered.report
        """How much the journal gave back and how long it took (None without a journal)."""
        # One instrument listed on several venues is one position for the limits.
        listings = InstrumentMap(self.config.instruments)
        self.oms_store = OmsStore(recovered.state, listings=listings)
        self.risk_store = RiskStore.create(
            risk_limits_from_config(self.config.risk, listings=listings),
            now_ns=self.clock.time_ns,
        )
        self.risk_store.book.restore(recovered.state.open_orders(), recovered.state.positions())
        self.venues: dict[str, object] = {}
        """Each venue's runtime object, as its factory returned it (a ``PaperVenue``
        for ``paper``, a ``BinanceLink`` for ``binance``): kept across re-attachments."""
        self._venue_status: dict[str, Callable[[], dict[str, Any]]] = {}
        self._breaker_stores: dict[str, BreakerStore] = {}
        self._early_observers: dict[str, list[Callable[[BrokerReply], None]]] = {}
        self._root: Address | None = None
        self._run_tag = _run_tag(self.clock.time_ns())
        self.oms_store.ids = ClientOrderIdFamily(f"{self._run_tag}ks")
        self._parent_ids = ClientOrderIdFamily(f"{self._run_tag}P")
        self.execution = ExecutionRuntime(
            AlgorithmEnv(
                self.directory,
                seed=section.seed,
                lot_sizes={
                    symbol: rules.lot_size
                    for symbol, rules in self.config.risk.instruments.items()
                    if rules.lot_size is not None
                },
            )
        )
        """The ``execution`` subtree's node-owned part: its algorithms' environment."""
        self.router_store = router_store(
            self.config,
            ids=ClientOrderIdFamily(f"{self._run_tag}rt"),
            circuit=self._circuit_state,
            research=ResearchDesk(
                seed=section.seed, taker_fee_bps=self.config.routing.taker_fee_bps
            ),
        )
        self._router_control = RouterControl(self)
        self.control: ControlServer | None = None
        """The control API, while the node runs with ``control.enabled``."""
        self.observability = Observability(self)
        """Metrics endpoint and alerts (``metrics:``/``alerts:``); inert without them."""

    # -- the journal ----------------------------------------------------------------

    def _attach_journal(self) -> None:
        journal, section = self.journal, self.config.journal
        if journal is None or section is None:
            return
        writer = OmsJournal(
            journal,
            snapshot_every=section.snapshot_every,
            write_ahead=FsyncPolicy.parse(section.fsync).mode is not FsyncMode.NONE,
        )
        # An order the OMS has nothing to do after is committed on the OMS's own
        # thread (``OmsJournal.record_to_send``): it asks the OMS's mailbox, which
        # is the cell's and so the same for every incarnation.
        writer.idle = self.oms.cell.context.mailbox_empty
        self.oms_store.journal = writer
        writer.attach()

    def _resolve_recovered(self, venue: str, acceptance: AcceptanceWindow | None) -> None:
        resolve_recovered(
            self.directory,
            self.oms_store.state,
            venue,
            acceptance=acceptance,
            oms=self.oms,
            clock=self.clock,
        )

    # -- the tree -----------------------------------------------------------------

    def tree_spec(self) -> SupervisorSpec:
        section = self.config.node
        intensity = Intensity(section.intensity.max_restarts, section.intensity.within_seconds)
        directory, oms_store, risk_store = self.directory, self.oms_store, self.risk_store
        router_store = self.router_store
        ack_timeout = self.config.oms.ack_timeout
        drift_policy = self.config.risk.on_drift
        on_drift = None if drift_policy == "NONE" else TradingState(drift_policy)
        return SupervisorSpec(
            section.name,
            strategy=SupervisionStrategy.ONE_FOR_ONE,
            intensity=intensity,
            children=(
                SupervisorSpec(
                    "core",
                    strategy=SupervisionStrategy.REST_FOR_ONE,
                    intensity=intensity,
                    children=(
                        ChildSpec(
                            "oms",
                            lambda: OmsActor(
                                directory, oms_store, ack_timeout=ack_timeout, on_drift=on_drift
                            ),
                        ),
                        ChildSpec("risk", lambda: RiskGuard(directory, risk_store)),
                        ChildSpec("router", lambda: RouterActor(directory, router_store)),
                        SupervisorSpec("strategies", intensity=Intensity(20, 60)),
                    ),
                ),
                execution_spec(self.execution, intensity=intensity),
                SupervisorSpec(
                    "brokers", strategy=SupervisionStrategy.ONE_FOR_ONE, intensity=intensity
                ),
            ),
        )

    def start(self) -> Address:
        """Start the tree, then the configured venues, then the configured strategies."""
        self._root = self.system.start(self.tree_spec())
        self._root.cell.first_start.started.wait()
        self._attach_journal()
        self.observability.start(self._root)
        for venue in self.config.venues:
            self.add_venue(venue)
        # Parents the journal shows working resume only now: their children need venues.
        self.execution.ready.set()
        self.supervisor("execution/coordinator").tell(ResumeParents())
        for strategy in self.config.strategies:
            self.add_strategy_from_config(strategy)
        if self.config.execution_mode is ExecutionMode.EMERGENCY:
            self._router_control.emergency("execution_mode: EMERGENCY in the config")
        if self.config.control.enabled:
            self.control = ControlServer(self, self.config.control).start()
        # Last: what is alive now lives as long as the node, and is frozen out of
        # the collections to come (``_gc``).
        self._gc.engage()
        logger.info("node %s started", self.config.node.name)
        return self._root

    def stop(self, timeout: float | None = None) -> None:
        try:
            if self.control is not None:
                # First: no operator action may reach a node that is stopping.
                self.control.stop()
                self.control = None
            self.system.shutdown(
                timeout if timeout is not None else self.config.node.shutdown_timeout,
                reason="stop requested",
            )
            self.observability.stop()
            if self.journal is not None:
                self.journal.close()
            self._router_control.close()
        finally:
            # Even when closing something failed: the collector is the process's.
            self._gc.release()
        logger.info("node %s stopped", self.config.node.name)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the node has terminated (e.g. its root gave up); False on timeout."""
        return self.system.wait_terminated(timeout)

    @property
    def control_url(self) -> str | None:
        """The control API's URL (``http://…``, ``https://…`` or ``unix:<path>``),
        None when not serving."""
        return None if self.control is None else self.control.url

    @property
    def failed(self) -> bool:
        return self.system.failed

    def supervisor(self, name: str) -> Address:
        address = self.system.lookup(self.directory.path(*name.split("/")))
        if address is None:
            raise KeyError(f"node has no supervisor {name!r}")
        return address

    @property
    def oms(self) -> Address:
        return self.directory.oms()

    @property
    def risk(self) -> Address:
        return self.directory.risk()

    # -- venues ---------------------------------------------------------------------

    def add_venue(self, config: VenueConfig, *, venue: object | None = None) -> VenueEntry:
        """Connect a venue at runtime: a breaker and the venue's own subtree under ``brokers``.

        The venue's kind (its adapter) builds the subtree from the config's
        settings; ``venue`` hands the factory an object the caller built (a
        ``PaperVenue`` of other instruments, for ``paper``)."""
        name = config.name
        kind = get_venue_kind(config.kind)
        state = self.oms_store.state
        open_orders = state.open_orders(venue=name)
        context: VenueContext[Any] = VenueContext(
            name=name,
            settings=config.settings,
            config=config,
            clock=self.clock,
            reports_to=self.oms,
            seed=self.config.node.seed,
            backoff=self._backoff(config),
            recovered=RecoveredVenue(
                open_orders=open_orders,
                cursors=state.venue_cursors(name),
                executions={
                    view.client_order_id: state.execution_ids(view.client_order_id)
                    for view in open_orders
                },
            ),
            previous=self.venues.get(name),
            provided=venue,
        )
        build = kind.factory(context)
        self.venues[name] = build.runtime
        self._venue_status[name] = build.status
        return self._attach_venue(config, build)

    def _attach_venue(self, config: VenueConfig, build: VenueBuild) -> VenueEntry:
        """A venue's subtree under ``brokers``: its breaker, then what its factory built."""
        capabilities = build.capabilities
        name = config.name
        store = self._breaker_stores.get(name) or self._breaker_store(config)
        self._breaker_stores[name] = store
        self.observability.venue_attached(name, store)
        directory = self.directory
        base = self.directory.path("brokers", name)
        breaker = config.breaker
        children: list[ChildSpec | SupervisorSpec] = [
            ChildSpec(
                "breaker",
                lambda: BreakerActor(
                    name,
                    directory=directory,
                    store=store,
                    broker_path=f"{base}/broker",
                    request_timeout=breaker.request_timeout,
                    park_when_open=breaker.when_open == "park",
                    acceptance=capabilities.acceptance,
                    unknown_outcome_timeout=breaker.unknown_outcome_timeout,
                ),
            ),
            build.broker,
            *build.extra,
        ]
        intensity = Intensity(
            self.config.node.intensity.max_restarts * 4, self.config.node.intensity.within_seconds
        )
        add_child(
            self.supervisor("brokers"),
            SupervisorSpec(
                name,
                strategy=SupervisionStrategy.REST_FOR_ONE,
                intensity=intensity,
                children=tuple(children),
            ),
        )
        entry = VenueEntry(
            name,
            breaker=self._lookup(f"{base}/breaker"),
            broker=self._lookup(f"{base}/broker"),
            capabilities=capabilities,
        )
        self.directory.register_venue(entry)
        entry.broker.tell(QuoteSubscription(self.oms))
        entry.broker.tell(QuoteSubscription(self.risk))
        entry.broker.tell(QuoteSubscription(self.directory.router()))
        self._resolve_recovered(name, capabilities.acceptance)
        logger.info("venue %s connected", name)
        return entry

    def _backoff(self, config: VenueConfig) -> Backoff:
        backoff_config = config.backoff or self.config.broker_backoff
        return Backoff(
            backoff_config.min_seconds, backoff_config.max_seconds, backoff_config.random_factor
        )

    def observe_breaker(self, venue: str, observer: Callable[[BrokerReply], None]) -> None:
        """Have ``observer`` called with every reply ``venue``'s breaker takes in
        (also before the venue is added: the first replies of a recovery)."""
        store = self._breaker_stores.get(venue)
        if store is None:
            self._early_observers.setdefault(venue, []).append(observer)
        else:
            store.observers.append(observer)

    def remove_venue(self, name: str) -> bool:
        """Disconnect a venue; orders for it are refused at once while it is absent."""
        self.directory.unregister_venue(name)
        return remove_child(self.supervisor("brokers"), name)

    def _breaker_store(self, config: VenueConfig) -> BreakerStore:
        breaker = config.breaker
        monotonic = self.clock.monotonic
        backoff = self.config.broker_backoff
        return BreakerStore(
            breaker=CircuitBreaker(
                config.name,
                failure_threshold=breaker.failure_threshold,
                open_timeout=breaker.open_timeout,
                half_open_max_probes=breaker.half_open_max_probes,
                monotonic=monotonic,
            ),
            bucket=TokenBucket(breaker.rate_per_second, breaker.burst, monotonic=monotonic),
            retry=RetryPolicy(
                max_attempts=max(1, breaker.max_retries + 1),
                base_delay=backoff.min_seconds,
                max_delay=backoff.max_seconds,
                random_factor=backoff.random_factor,
                rng=random.Random(f"{self.config.node.seed}:retry:{config.name}"),
            ),
            dlq=DeadLetterQueue(breaker.dlq_capacity),
            observers=self._early_observers.pop(config.name, []),
        )

    def _lookup(self, path: str) -> Address:
        address = self.system.lookup(path)
        if address is None:
            raise LookupError(f"no actor at {path}")
        return address

    # -- strategies -----------------------------------------------------------------

    def add_strategy(self, strategy_id: str, factory: Callable[[], Strategy]) -> Address:
        """Run a strategy in its own supervised actor; it is restarted alone if it raises."""
        directory = self.directory
        prefix = f"{self._run_tag}{strategy_id}"

        def named() -> Strategy:
            strategy = factory()
            strategy.strategy_id = strategy_id
            return strategy

        return add_child(
            self.supervisor("core/strategies"),
            ChildSpec(strategy_id, lambda: StrategyActor(named, directory, id_prefix=prefix)),
        )

    def add_strategy_from_config(self, config: StrategyConfig) -> Address:
        return self.add_strategy(config.id, _strategy_factory(config))

    def remove_strategy(self, strategy_id: str) -> bool:
        return remove_child(self.supervisor("core/strategies"), strategy_id)

    # -- operations -------------------------------------------------------------------

    def accept_balance_baseline(
        self, venue: str, asset: str | None = None, *, reason: str = "accepted by the operator"
    ) -> tuple[str, ...]:
        """Take the venue's account as right for ``asset`` (all assets when None):
        a position drift stays one until its fills explain it or this is called
        (after a deposit or a manual trade, say). Journaled; returns the assets."""
        accepted = self.oms.ask(AcceptBalanceBaseline(venue, asset, reason))
        assert isinstance(accepted, tuple)
        return accepted

    def kill_switch(self, *, flatten: bool = False, timeout: float = 30.0) -> KillSwitchReport:
        """Halt the risk guard, cancel every open order on every venue, optionally flatten."""
        started = self.clock.time_ns()
        done: Promise[KillSwitchReport] = Promise()
        engage = EngageKillSwitch(
            flatten=flatten,
            done=done,
            started_ns=started,
            confirm_within=max(0.1, timeout / 2 - 0.5),
        )
        # The guard halts, then tells the OMS to engage: behind every order it
        # approved before the halt, so the kill switch sees them all.
        self.risk.tell(SetTradingState(TradingState.HALTED, "kill switch", then_tell_oms=engage))
        self.observability.kill_switch_engaged(flatten=flatten)
        report = done.wait(timeout)
        logger.warning(
            "kill switch: %d open order(s), %d cancel(s) confirmed, %d flatten order(s), %.1f ms",
            report.open_orders_found,
            report.cancels_confirmed,
            len(report.flatten_orders),
            report.total_seconds * 1000,
        )
        return report

    def submit_parent(
        self,
        symbol: str,
        side: Side,
        quantity: Decimal,
        algorithm: AlgoParams,
        *,
        venue: str | None = None,
        parent_id: str | None = None,
        strategy_id: str = OPERATOR_STRATEGY,
    ) -> str:
        """Work ``quantity`` with an execution algorithm (an operator's parent order).

        Returns the parent id. The parent passes the risk guard (its parameters,
        then its total as one order) and is answered ``ParentAccepted`` or
        ``ParentDenied(code, reason)`` to ``strategy_id``'s subscribers; follow it
        with ``parent(parent_id)``."""
        parent = SubmitParentOrder(
            parent_id=parent_id or self._parent_ids.next(),
            strategy_id=strategy_id,
            venue=venue,
            symbol=symbol,
            side=side,
            quantity=quantity,
            algorithm=algorithm,
            ts_ns=self.clock.time_ns(),
        )
        self.risk.tell(parent)
        return parent.parent_id

    def cancel_parent(self, parent_id: str, *, reason: str = "cancelled by the operator") -> None:
        """Stop a parent's algorithm and cancel its open children."""
        self.risk.tell(
            CancelParentOrder(parent_id=parent_id, reason=reason, ts_ns=self.clock.time_ns())
        )

    def parent(self, parent_id: str) -> ParentView | None:
        """The parent as the OMS has it (state, filled, average price, children)."""
        view = self.oms.ask(GetParent(parent_id))
        assert view is None or isinstance(view, ParentView)
        return view

    def parents(self, *, working_only: bool = False) -> tuple[ParentView, ...]:
        views = self.oms.ask(GetParents(working_only=working_only))
        assert isinstance(views, tuple)
        return views

    # -- execution modes and approvals (the router) ----------------------------------

    def pending_approvals(self) -> tuple[PendingApproval, ...]:
        """Orders waiting for a person's approval (SEMI_AUTO, MANUAL), oldest first."""
        return self._router_control.pending()

    def approve(self, approval_id: str, who: str) -> bool:
        """Send a pending order on (routed, then risk-checked); False if not pending."""
        return self._router_control.approve(approval_id, who)

    def reject(self, approval_id: str, who: str, reason: str) -> bool:
        """Deny a pending order (``APPROVAL_REJECTED``); False if not pending."""
        return self._router_control.reject(approval_id, who, reason)

    def execution_mode(self, strategy_id: str | None = None) -> ExecutionMode:
        """The node's mode, or the mode ``strategy_id``'s orders run under."""
        return self._router_control.mode(strategy_id)

    def set_execution_mode(
        self,
        mode: ExecutionMode | str | None,
        *,
        who: str = "operator",
        strategy_id: str | None = None,
        timeout: float = 30.0,
    ) -> KillSwitchReport | None:
        """Change the node's mode (or a strategy's override; None drops it). EMERGENCY
        runs the kill switch with flatten on every venue and halts trading until
        ``resume``; its report is returned."""
        return self._router_control.set_mode(
            mode, who=who, strategy_id=strategy_id, timeout=timeout
        )

    def resume(self, who: str, mode: ExecutionMode | str | None = None) -> ExecutionMode:
        """End an emergency: the risk guard ACTIVE again and the node in ``mode`` (the
        config's mode, FULL_AUTO if that was EMERGENCY). Returns the new mode."""
        return self._router_control.resume(who, mode)

    def router_status(self) -> dict[str, Any]:
        """Modes, approvals, recent routes and failovers, research records."""
        return self._router_control.status()

    def _circuit_state(self, venue: str) -> CircuitState | None:
        """Read from the node-owned breaker without side effects: an OPEN circuit
        whose open window has ended admits a probe, so it counts as HALF_OPEN."""
        store = self._breaker_stores.get(venue)
        if store is None:
            return None
        stats = store.breaker.stats()
        if (
            stats.circuit_state is CircuitState.OPEN
            and stats.open_until is not None
            and self.clock.monotonic() >= stats.open_until
        ):
            return CircuitState.HALF_OPEN
        return stats.circuit_state

    def failure_stats(self, venue: str) -> VenueFailureStats:
        entry = self.directory.venue(venue)
        if entry is None:
            raise KeyError(f"venue {venue!r} is not connected")
        stats = entry.breaker.ask(GetBreakerStats())
        assert isinstance(stats, VenueFailureStats)
        return stats

    def tree(self) -> TreeNode | None:
        return self.system.tree()

    def status(self) -> dict[str, Any]:
        """The status view: the tree, the books, the actors' answers, each venue's status."""
        return node_status(self, self._connections, self._venue_status)

    def config_venue_names(self) -> list[str]:
        """Every venue this node has been asked to trade on, configured or added."""
        names = [venue.name for venue in self.config.venues]
        names += [e.name for e in self.directory.venues() if e.name not in names]
        return names

    @staticmethod
    def directory_path_prefix(name: str) -> str:
        return f"/{name}/brokers/"

    def never_connected(self) -> dict[str, str]:
        """Venues whose broker never once connected and reconciled, with the last
        reason it gave: a node that never reached its venue has not traded, and
        must not report a clean run."""
        return self._connections.never_connected(self.config_venue_names())

    def _books(self) -> dict[str, Any]:
        return books(self)

    def __enter__(self) -> Node:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _strategy_factory(config: StrategyConfig) -> Callable[[], Strategy]:
    if config.kind == "example":
        return lambda: ExampleStrategy(
            config.id, config.venue, tuple(config.symbols), config.cycle_time_ms
        )
    module_name, _, class_name = config.kind.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)

    def build() -> Strategy:
        strategy = cls(**config.params)
        if not isinstance(strategy, Strategy):
            raise TypeError(f"{config.kind} is not a tradenode Strategy")
        strategy.strategy_id = config.id
        strategy.venue = config.venue
        strategy.symbols = tuple(config.symbols) or strategy.symbols
        strategy.cycle_time_ms = config.cycle_time_ms or strategy.cycle_time_ms
        return strategy

    return build


def _run_tag(now_ns: int) -> str:
    """A short tag unique per node start, so client order ids never repeat across runs.

    Milliseconds in base 36, six characters: two starts in the same
    millisecond, or exactly 25 days apart to the millisecond, are the only
    collisions (the journal's persisted counters close even those).
    """
    return base36(now_ns // 1_000_000)[-6:]
