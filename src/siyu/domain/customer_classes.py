"""The codes of the customer classes and stages the metrics assign (one home; see rfm-aipl.md and domain.md).

RFM: "R high" means recent; 重要/一般 = M high/low; 价值/发展/保持/挽留 = (R, F) high/high, high/low, low/high, low/low.
"""

from __future__ import annotations

from typing import Literal, get_args

RfmClass = Literal[
    "important_value",
    "important_develop",
    "important_keep",
    "important_win_back",
    "general_value",
    "general_develop",
    "general_keep",
    "general_win_back",
]
AiplStage = Literal["A", "I", "P", "L"]
LifecycleStage = Literal["new_no_purchase", "new_purchased", "old_no_purchase", "old_purchased_once", "old_repurchased"]

# class code → (R high, F high, M high)
RFM_CLASS_RULES: dict[str, tuple[bool, bool, bool]] = {
    "important_value": (True, True, True),
    "important_develop": (True, False, True),
    "important_keep": (False, True, True),
    "important_win_back": (False, False, True),
    "general_value": (True, True, False),
    "general_develop": (True, False, False),
    "general_keep": (False, True, False),
    "general_win_back": (False, False, False),
}
RFM_CLASSES: tuple[str, ...] = get_args(RfmClass)
AIPL_STAGES: tuple[str, ...] = get_args(AiplStage)  # lowest to highest
LIFECYCLE_STAGES: tuple[str, ...] = get_args(LifecycleStage)

assert tuple(RFM_CLASS_RULES) == RFM_CLASSES
