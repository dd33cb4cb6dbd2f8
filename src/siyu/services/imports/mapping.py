"""Column mapping: guess which source column feeds each target field; explicit choices override guesses."""

from __future__ import annotations

import re

from siyu.services.errors import SiyuError
from siyu.services.imports.kinds import KindSpec, kind_spec

_NOISE = re.compile(r"[\s_\-()（）\[\]【】:：*.]+")


def _norm(text: str) -> str:
    return _NOISE.sub("", text.strip().lower())


def guess_mapping(kind: str, headers: list[str]) -> dict[str, str | None]:
    """Guess ``{target field: source column or None}`` from the headers (Chinese or English).

    Exact matches (ignoring case, spaces, ``_``/``-`` and brackets) win over headers that merely contain a
    synonym; each source column feeds at most one field.
    """
    spec = kind_spec(kind)
    normed = {h: _norm(h) for h in headers}
    used: set[str] = set()
    result: dict[str, str | None] = {f.name: None for f in spec.fields}
    for f in spec.fields:  # pass 1: exact
        for syn in (f.name, *f.synonyms):
            hit = next((h for h in headers if h not in used and normed[h] == _norm(syn)), None)
            if hit is not None:
                result[f.name] = hit
                used.add(hit)
                break
    for f in spec.fields:  # pass 2: header contains a (multi-character) synonym
        if result[f.name] is not None:
            continue
        for syn in f.synonyms:
            key = _norm(syn)
            if len(key) < 2 or key in {"id", "name"}:
                continue
            hit = next((h for h in headers if h not in used and key in normed[h]), None)
            if hit is not None:
                result[f.name] = hit
                used.add(hit)
                break
    return result


def resolve_mapping(kind: str, headers: list[str], explicit: dict[str, str | None] | None = None) -> dict[str, str]:
    """The mapping to import with: guesses overridden by ``explicit``; raise SiyuError when it cannot work.

    An explicit value of None or "" un-maps a field. Unknown fields, unknown columns, and missing required
    fields are errors that name the field and the headers seen.
    """
    spec: KindSpec = kind_spec(kind)
    mapping = guess_mapping(kind, headers)
    seen = ", ".join(headers) or "(none)"
    for target, column in (explicit or {}).items():
        if target not in mapping:
            raise SiyuError(
                f"{spec.name} has no field {target!r}; fields are: {', '.join(mapping)}", field=f"mapping.{target}"
            )
        if column in (None, ""):
            mapping[target] = None
            continue
        if column not in headers:
            raise SiyuError(
                f"mapping {target}={column!r}: the file has no column {column!r}; headers seen: {seen}",
                field=f"mapping.{target}",
            )
        for other, col in mapping.items():  # an explicit choice takes the column away from a guess
            if col == column and other != target and other not in (explicit or {}):
                mapping[other] = None
        mapping[target] = column
    for f in spec.fields:
        if f.required and not mapping.get(f.name):
            raise SiyuError(
                f"{spec.name}: required field {f.name!r} has no column (headers seen: {seen}); "
                f"name a column with --map {f.name}=<column> or add a column such as {f.synonyms[0]!r}",
                field=f.name,
            )
    if spec.any_of and not any(mapping.get(n) for n in spec.any_of):
        raise SiyuError(
            f"{spec.name}: no identifier column found (headers seen: {seen}); map at least one of "
            f"{', '.join(spec.any_of)}, e.g. --map phone=<column>",
            field=spec.any_of[0],
        )
    return {k: v for k, v in mapping.items() if v}
