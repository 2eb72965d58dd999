"""Venue adapters: each a codec, a trio session and a broker actor."""

__all__: list[str] = []
