"""The local venues' knobs and admin port: one table for Python and HTTP.

A fake venue marks its fault and price methods with :func:`knob`;
:func:`collect_knobs` describes them from their signatures and docstrings
(:class:`Knob`), and :func:`build_admin_app` serves each one as
``POST <admin_url>/<name>`` with a JSON object of the same keyword
arguments, converted and checked (:meth:`Knob.bind`), plus read-only
``GET`` pages. The Python and HTTP names then cannot drift apart, and a
bad admin call is a 400 naming what is wrong, never a 500.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import json
import math
import re
import types
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = [
    "AdminAnswer",
    "AdminError",
    "AdminHandler",
    "Knob",
    "KnobParameter",
    "admin_overrides",
    "build_admin_app",
    "collect_knobs",
    "describe_knob",
    "key_name",
    "knob",
]

Json = dict[str, Any]


class AdminError(Exception):
    """A refused admin call: answered 400 with ``{"ok": false, "error": ..., **extra}``."""

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.body: dict[str, Any] = {"ok": False, "error": message, **extra}


@dataclass(frozen=True, slots=True)
class AdminAnswer:
    """What a knob returned, and a note when it was called by a deprecated name."""

    result: Any = None
    deprecated: str | None = None


AdminHandler = Callable[[str, Json], Awaitable[AdminAnswer]]
"""``handler(name, args)``: run one knob with its JSON arguments."""


def build_admin_app(handler: AdminHandler, views: Mapping[str, Callable[[], Any]]) -> Starlette:
    """``POST /_admin/<knob>`` with a JSON object of keyword arguments; ``GET /_admin/<view>``.

    ``handler(name, args)`` runs a knob; it raises :class:`AdminError` for an
    unknown name or bad arguments (answered 400 with the reason, never 500).
    ``views`` are the read-only GET pages (``state``, ``calls``, ...).
    """

    async def knob(request: Request) -> Response:
        name = request.path_params["knob"]
        body = await request.body()
        try:
            args = json.loads(body) if body.strip() else {}
        except ValueError as error:
            return JSONResponse(
                {"ok": False, "error": f"{name}: the body is not JSON ({error})"}, 400
            )
        if not isinstance(args, dict):
            return JSONResponse(
                {"ok": False, "error": f"{name}: arguments must be a JSON object"}, 400
            )
        try:
            outcome = await handler(name, args)
        except AdminError as error:
            return JSONResponse(error.body, 400)
        answer: dict[str, Any] = {"ok": True, "result": _plain(outcome.result)}
        if outcome.deprecated is not None:
            answer["deprecated"] = outcome.deprecated
        return JSONResponse(answer)

    def view(name: str, function: Callable[[], Any]) -> Route:
        async def page(_request: Request) -> Response:
            return JSONResponse(_plain(function()))

        return Route(f"/_admin/{name}", page, methods=["GET"], name=f"admin-{name}")

    async def unknown_view(request: Request) -> Response:
        name = request.path_params["view"]
        pages = sorted(views)
        error = f"no GET page {name!r} (pages: {', '.join(pages)}; knobs are POST)"
        return JSONResponse({"ok": False, "error": error, "pages": pages}, 404)

    return Starlette(
        routes=[
            *(view(name, function) for name, function in views.items()),
            Route("/_admin/{view}", unknown_view, methods=["GET"]),
            Route("/_admin/{knob}", knob, methods=["POST"]),
        ]
    )


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__dataclass_fields__"):
        return {name: _plain(getattr(value, name)) for name in value.__dataclass_fields__}
    return value


_F = TypeVar("_F", bound=Callable[..., Any])

_KNOB_MARK = "__tradenode_knob__"
_OVERRIDE_MARK = "__tradenode_admin_override__"


def knob(method: _F) -> _F:
    """Mark a venue method as a fault/price knob, served on the admin port
    under its own name with its own keyword names (see :func:`collect_knobs`)."""
    setattr(method, _KNOB_MARK, True)
    return method


def admin_override(name: str) -> Callable[[_F], _F]:
    """What the admin port awaits for knob ``name`` instead of the method itself.

    Only for knobs whose method blocks until the venue's trio loop has done
    the work: the admin is served on that loop, so it awaits the same work.
    """

    def register(function: _F) -> _F:
        setattr(function, _OVERRIDE_MARK, name)
        return function

    return register


def collect_knobs(venue_class: type) -> dict[str, Knob]:
    """Every method of ``venue_class`` marked :func:`knob`, described, by name (sorted)."""
    found = {
        name: describe_knob(getattr(venue_class, name))
        for name in dir(venue_class)
        if getattr(getattr(venue_class, name, None), _KNOB_MARK, False)
    }
    return dict(sorted(found.items()))


def admin_overrides(venue_class: type) -> dict[str, str]:
    """Knob name -> the name of the coroutine method the admin port awaits for it."""
    overrides: dict[str, str] = {}
    for name in dir(venue_class):
        knob_name = getattr(getattr(venue_class, name, None), _OVERRIDE_MARK, None)
        if isinstance(knob_name, str):
            overrides[knob_name] = name
    return overrides


def _as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(value)
    return int(value)


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(value)
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _as_decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise TypeError(value)
    exact = Decimal(str(value))
    if not exact.is_finite():
        raise ValueError(value)
    return exact


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


def _as_strings(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise TypeError(value)
    return list(value)


_CONVERTERS: Mapping[str, Callable[[Any], Any]] = {
    "bool": _as_bool,
    "int": _as_int,
    "float": _as_float,
    "decimal": _as_decimal,
    "str": _as_str,
    "list[str]": _as_strings,
}


@dataclasses.dataclass(frozen=True, slots=True)
class KnobParameter:
    """One keyword argument of a knob, as the admin endpoint accepts it in its JSON object."""

    name: str
    kind: str
    """``int``, ``float``, ``bool``, ``decimal``, ``str`` or ``list[str]``; ``?`` suffix: null allowed."""
    required: bool
    default: Any = None

    def describe(self) -> str:
        return self.name if self.required else f"{self.name}={self.default!r}"

    def convert(self, knob: str, value: Any) -> Any:
        """``value`` (decoded JSON) as the method's argument; ``AdminError`` if it is not one."""
        if value is None and self.kind.endswith("?"):
            return None
        try:
            return _CONVERTERS[self.kind.removesuffix("?")](value)
        except (TypeError, ValueError, ArithmeticError):
            raise self._wrong(knob, value) from None

    def _wrong(self, knob: str, value: Any) -> AdminError:
        expected = {
            "int": "an integer",
            "float": "a number",
            "bool": "true or false",
            "decimal": "a decimal number (string or number)",
            "str": "a string",
            "list[str]": "a list of strings",
        }[self.kind.removesuffix("?")]
        if self.kind.endswith("?"):
            expected += " or null"
        return AdminError(f"{knob}: {self.name} must be {expected}, not {value!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class Knob:
    """One knob of a local venue: ``POST <admin_url>/<name>`` with its keyword arguments."""

    name: str
    summary: str
    """The first line of the method's docstring."""
    parameters: tuple[KnobParameter, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({', '.join(p.describe() for p in self.parameters)})"

    def bind(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON arguments as keyword arguments, or ``AdminError`` naming what is wrong."""
        known = {p.name: p for p in self.parameters}
        unknown = sorted(set(args) - set(known))
        if unknown:
            accepted = ", ".join(known) or "none"
            raise AdminError(
                f"{self.name}: unknown argument(s) {', '.join(unknown)} (accepted: {accepted})"
            )
        missing = [p.name for p in self.parameters if p.required and p.name not in args]
        if missing:
            raise AdminError(f"{self.name}: missing required argument(s) {', '.join(missing)}")
        return {name: known[name].convert(self.name, value) for name, value in args.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "summary": self.summary,
            "parameters": [
                {"name": p.name, "type": p.kind, "required": p.required}
                | ({} if p.required else {"default": p.default})
                for p in self.parameters
            ],
        }


def _kind_of(hint: Any) -> str:
    """A knob parameter's annotation as a :attr:`KnobParameter.kind`."""
    optional = ""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(members) != 1:
            raise TypeError(f"knob parameters take one type or None, not {hint!r}")
        hint, optional = members[0], "?"
    if typing.get_origin(hint) in (collections.abc.Iterable, list) and typing.get_args(hint) == (
        str,
    ):
        return "list[str]" + optional
    kinds = {int: "int", float: "float", bool: "bool", Decimal: "decimal", str: "str"}
    if hint not in kinds:
        raise TypeError(f"no admin conversion for a knob parameter of type {hint!r}")
    return kinds[hint] + optional


def describe_knob(method: Callable[..., Any]) -> Knob:
    hints = typing.get_type_hints(method)
    parameters = []
    for parameter in list(inspect.signature(method).parameters.values())[1:]:
        required = parameter.default is inspect.Parameter.empty
        parameters.append(
            KnobParameter(
                name=parameter.name,
                kind=_kind_of(hints[parameter.name]),
                required=required,
                default=None if required else parameter.default,
            )
        )
    doc = inspect.getdoc(method) or ""
    summary = doc.strip().splitlines()[0] if doc.strip() else ""
    if not summary:
        raise TypeError(f"knob {method.__name__} needs a docstring: its first line is its help")
    plain = re.sub(r":\w+:`~?\.?([^`]+)`", r"\1()", summary).replace("``", "")
    return Knob(method.__name__, plain, tuple(parameters))


def key_name(knob: Knob) -> str:
    """What a ``KeyError`` from ``knob`` is about: its symbol, instrument or asset argument."""
    names = [p.name for p in knob.parameters if p.name in ("symbol", "instrument", "asset")]
    return names[0] if names else "name"
