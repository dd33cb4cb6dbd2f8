"""Points lots and FIFO consumption (pure).

Each earn is a lot with an expiry date. A debit takes points from the lots in FIFO order: the lot that expires
first goes first (lots that never expire go last), ties by the order they were earned. A lot past its date is
expired (its remainder leaves the balance) before anything else happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from siyu.errors import SiyuError


@dataclass(frozen=True)
class Lot:
    """What is left of one earn: ``id`` (ledger entry id, in earn order), ``remaining`` points, ``expires_at``."""

    id: int
    remaining: int
    expires_at: datetime | None


def fifo_order(lots: list[Lot]) -> list[Lot]:
    """Lots in the order debits consume them: earliest expiry first, never-expiring last, then earn order."""
    return sorted(lots, key=lambda lot: (lot.expires_at is None, lot.expires_at or datetime.max, lot.id))


def take_fifo(lots: list[Lot], points: int, first: int | None = None) -> list[tuple[int, int]]:
    """The (lot id, points) a debit of ``points`` takes; ``first`` = a lot to take from before the others (a
    reversal takes back the lot it created). Raises SiyuError when the lots hold fewer points."""
    order = fifo_order([lot for lot in lots if lot.remaining > 0])
    if first is not None:
        order = [lot for lot in order if lot.id == first] + [lot for lot in order if lot.id != first]
    taken: list[tuple[int, int]] = []
    need = points
    for lot in order:
        if need <= 0:
            break
        n = min(lot.remaining, need)
        taken.append((lot.id, n))
        need -= n
    if need > 0:
        raise SiyuError(f"points: only {points - need} points left, fewer than the {points} asked for", "points")
    return taken
