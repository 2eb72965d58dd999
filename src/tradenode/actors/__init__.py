"""The trading core as supervised actors (OMS, risk guard, breaker, strategy bridge)."""

__all__: list[str] = []
