"""Memoized expression builders: an analytic is built once per (function, brand tables, arguments).

Building an Ibis expression costs tens of milliseconds (every node is validated), and the result depends only on
the definition and its parameters — never on the data. ``@memoized`` keeps the built expression in the ``Tables``
it was built on (a bounded LRU, ``Tables.memo``), so a second call with the same arguments returns the same
expression object; the data is read when the expression is executed, every time.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, ParamSpec, Protocol, TypeVar

MAX_ENTRIES = 128

P = ParamSpec("P")
R = TypeVar("R")


class ExprMemo:
    """A bounded, thread-safe LRU of built expressions (key → expression)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable, build: Callable[[], R]) -> R:
        """The entry for ``key``, built with ``build()`` (outside the lock) when absent."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                value: R = self._items[key]
                return value
            self.misses += 1
        value = build()
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class _HasMemo(Protocol):
    memo: ExprMemo


def memoized(fn: Callable[P, R]) -> Callable[P, R]:
    """Memoize an expression builder whose first argument is a ``Tables`` (it carries the memo).

    The key is the function and all its other arguments after defaults are applied (``f(t, d)`` and
    ``f(t, d, None)`` share an entry); unhashable arguments (lists) skip the memo.
    """
    sig = inspect.signature(fn)
    name = f"{fn.__module__}.{fn.__qualname__}"

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        t: _HasMemo = bound.args[0]
        # with the types: True == 1 and 1 == 1.0, but they need not build the same expression
        key = (name, tuple((type(a), a) for a in bound.args[1:]), tuple(sorted(bound.kwargs.items())))
        try:
            hash(key)
        except TypeError:
            return fn(*args, **kwargs)
        return t.memo.get(key, lambda: fn(*args, **kwargs))

    return wrapper
