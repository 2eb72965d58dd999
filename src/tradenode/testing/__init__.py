"""Tools for tests of tradenode, of users' strategies and of venue adapters.

Its subpackages are the public API (runtime and adapter tiers):
:mod:`tradenode.testing.venues` (local fake venues speaking the real wire
protocols), :mod:`tradenode.testing.conformance` (the suite every venue
adapter passes) and :mod:`tradenode.testing.campaign` (the randomized
exactly-once drill). The clock and recorder tests use are exported once, by
the runtime that defines them (``tradenode.supervision.ManualClock``,
``EventRecorder``), and the paper venue's instruments by the simulator
(``tradenode.sim.paper_sim_config``, ``default_instruments``).
"""

__all__: list[str] = []
