"""siyu.services.heap.freeze_heap: the loaded app leaves the cyclic GC's reach; young collections get rarer."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import gc
from siyu.services.heap import freeze_heap
before = gc.get_freeze_count()
freeze_heap(young=10_000)
frozen = gc.get_freeze_count()
freeze_heap()  # once per process: a second call freezes nothing more
print(before, frozen, gc.get_freeze_count(), gc.get_threshold()[0])
"""


def test_freeze_heap_freezes_once_and_sets_the_young_threshold() -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True, timeout=60)
    before, frozen, again, young = map(int, out.stdout.split())
    assert before == 0 and frozen > 1000 and again == frozen and young == 10_000
