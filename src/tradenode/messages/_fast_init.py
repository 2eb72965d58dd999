"""A cheaper ``__init__`` for the frozen, slotted, keyword-only message dataclasses.

A frozen dataclass's generated ``__init__`` stores every field with
``object.__setattr__(self, name, value)`` (its own ``__setattr__`` refuses),
which looks the slot up by name on every call: on the order path that is
about 70 fields per order, and it was half of what building a message cost
once validation had its fast path. The ``__init__`` made here has the same
signature (keyword-only, the same defaults and default factories, the same
``__qualname__``, so a missing or unknown argument raises the same
``TypeError``) and stores each field through its slot's own descriptor,
found once when the class is made; then it calls ``__post_init__`` as the
dataclass's does. The instance is as frozen as before: only this
``__init__`` writes the slots, and ``__setattr__`` still refuses everyone
else. ``dataclasses.replace`` and the codec build through it too.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

__all__ = ["with_fast_init"]

_T = TypeVar("_T")

_NO_ARGUMENT = object()
"""Stands for "not passed" where a field has a default factory, as in dataclasses."""


def with_fast_init(cls: type[_T]) -> type[_T]:
    """Give the frozen, slotted, keyword-only dataclass ``cls`` the cheaper ``__init__``.

    Refuses (at import, so never silently) a class it cannot serve exactly:
    not a dataclass, not frozen, not slotted, a field that is positional or
    left out of ``__init__``, or an ``InitVar``.
    """
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: with_fast_init serves frozen, slotted dataclasses only")
    generated = list(inspect.signature(cls.__init__).parameters)[1:]
    if generated != [field.name for field in dataclasses.fields(cls)]:  # type: ignore[arg-type]
        # An InitVar is a parameter of __init__ but no field; init=False the reverse.
        raise TypeError(
            f"{cls.__name__}: with_fast_init serves keyword-only init fields only "
            f"(no InitVar, no init=False), not {generated}"
        )
    names: dict[str, Any] = {"_NO_ARGUMENT": _NO_ARGUMENT}
    parameters: list[str] = []
    body: list[str] = []
    for index, field in enumerate(dataclasses.fields(cls)):  # type: ignore[arg-type]
        if not field.kw_only or not field.init:
            raise TypeError(
                f"{cls.__name__}.{field.name}: with_fast_init serves keyword-only init fields only"
            )
        store = f"_store_{index}"
        names[store] = _slot(cls, field.name).__set__
        if field.default is not dataclasses.MISSING:
            names[f"_default_{index}"] = field.default
            parameters.append(f"{field.name}=_default_{index}")
            body.append(f"    {store}(self, {field.name})")
        elif field.default_factory is not dataclasses.MISSING:
            names[f"_factory_{index}"] = field.default_factory
            parameters.append(f"{field.name}=_NO_ARGUMENT")
            body.append(
                f"    {store}(self, _factory_{index}() "
                f"if {field.name} is _NO_ARGUMENT else {field.name})"
            )
        else:
            parameters.append(field.name)
            body.append(f"    {store}(self, {field.name})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    signature = f"self, *, {', '.join(parameters)}" if parameters else "self"
    source = f"def __init__({signature}) -> None:\n" + ("\n".join(body) or "    pass") + "\n"
    # Built from field names only, as dataclasses builds the __init__ it replaces.
    exec(source, names)
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = getattr(cls.__init__, "__doc__", None)
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


def _slot(cls: type, name: str) -> Any:
    """The member descriptor of slot ``name``, from the class in ``cls``'s MRO that has it."""
    for klass in cls.__mro__:
        descriptor = klass.__dict__.get(name)
        if descriptor is not None and hasattr(descriptor, "__set__"):
            return descriptor
    raise TypeError(f"{cls.__name__}.{name}: no slot to store the field in")
