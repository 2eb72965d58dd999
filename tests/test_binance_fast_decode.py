"""``decode_json`` reads every venue frame with one shared decoder: it must read
exactly what ``json.loads`` with the same hooks reads (exact decimals, the non-JSON
constants refused), take bytes in any encoding ``json.loads`` takes, and refuse
what it refuses, as a ``MalformedPayloadError``; and sharing the decoder between
threads must not mix their frames up."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any, NoReturn

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradenode import MalformedPayloadError

# Private: the JSON reader every adapter's codec shares (not part of the public API).
from tradenode.brokers._fields import decode_json


def _no_constants(name: str) -> NoReturn:
    raise ValueError(name)


def _reference(text: str | bytes) -> Any:
    return json.loads(text, parse_float=Decimal, parse_constant=_no_constants)


_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
_documents = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(_documents, st.sampled_from(["utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32"]))
def test_it_reads_what_json_loads_reads(document: Any, encoding: str) -> None:
    text = json.dumps(document, ensure_ascii=False)
    assert decode_json(text, "venue", "frame") == _reference(text)
    raw = text.encode(encoding)
    assert decode_json(raw, "venue", "frame") == _reference(raw)
    assert decode_json(bytearray(raw), "venue", "frame") == _reference(raw)


def test_decimals_stay_exact_and_ints_stay_ints() -> None:
    value = decode_json('{"p":"1.10","q":0.10000000,"n":7}', None, "frame")
    assert value == {"p": "1.10", "q": Decimal("0.10000000"), "n": 7}
    assert isinstance(value, dict) and str(value["q"]) == "0.10000000"


@pytest.mark.parametrize(
    "text",
    ["NaN", '{"a": Infinity}', "[-Infinity]", "\ufeff{}", "{", "", b"\xff\xfe\x00", 42, None],
)
def test_it_refuses_what_json_loads_refuses(text: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        _reference(text)
    with pytest.raises(MalformedPayloadError, match="frame: not JSON"):
        decode_json(text, "venue", "frame")


def test_threads_sharing_the_decoder_each_read_their_own_frames() -> None:
    failures: list[str] = []

    def read(n: int) -> None:
        frame = json.dumps({f"k{n}": [n, f"{n}.5", {"deep": n}], "shared": n})
        want = {f"k{n}": [n, f"{n}.5", {"deep": n}], "shared": n}
        for _ in range(2000):
            if decode_json(frame, None, "frame") != want:
                failures.append(f"thread {n}")
                return

    threads = [threading.Thread(target=read, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
