"""Per-area parts of the one translation catalogue (``siyu.i18n.CATALOGUE`` merges them).

Each module here defines ``ZH`` and ``EN`` dicts with the same keys, prefixed by its area (e.g. ``rfm.``);
add the module's name to ``AREAS`` below.  A key may be defined only once across all areas (checked at import).
"""

AREAS: tuple[str, ...] = (
    "metrics",
    "value",
    "guides",
    "operations",
    "segments",
    "clv",
    "messaging",
    "wecom_codes",
    "wecom_ops",
    "wecom_welcome",
    "journeys",
    "public",
    "sidebar",
    "campaigns",
    "guide_work",
    "pii",
    "lead_form",
)
