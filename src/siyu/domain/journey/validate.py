"""Parse and check a journey definition; every problem names the node id (when it is about a node) and the field.

``parse_journey(data)`` returns a ``JourneyDefinition`` or raises ``JourneyError`` whose ``errors`` is a list of
``{"node_id", "field", "path", "message"}`` — what a flow editor needs to mark the node and the field.
"""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from siyu.domain.journey.definition import NODE_KINDS, ConditionNode, JourneyDefinition, WaitSegmentNode
from siyu.domain.segment_def import DefinitionError, parse_definition
from siyu.errors import SiyuError

_TAGS = set(NODE_KINDS) | {"event", "segment", "date", "cadence", "manual"}
_TAGS |= {"send", "task", "tag", "attribute", "start_journey", "coupon"}
WAIT_KINDS = ("wait", "wait_event", "wait_segment")


class JourneyError(SiyuError):
    """An invalid journey; ``errors``: [{node_id, field, path, message}] (node_id None for journey-level fields)."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        first = errors[0]
        text = "; ".join(
            (f"node {e['node_id']!r} " if e.get("node_id") else "") + f"{e['field']}: {e['message']}"
            for e in errors[:5]
        )
        super().__init__(f"invalid journey — {text}", first["path"])
        self.errors = errors


def _strip_tags(data: Any, loc: tuple[Any, ...]) -> list[Any]:
    """Drop the union tags pydantic inserts into error locations right after a node, the trigger or an action."""
    parts: list[Any] = []
    node = data
    expect_tag = False
    for p in loc:
        if expect_tag and isinstance(node, dict) and p in (node.get("kind"), node.get("type")):
            expect_tag = False
            continue
        expect_tag = (isinstance(p, int) and parts == ["nodes"]) or (
            p in ("trigger", "action") and len(parts) in (0, 2)
        )
        parts.append(p)
        if isinstance(p, int):
            node = node[p] if isinstance(node, list) and p < len(node) else None
        else:
            node = node.get(p) if isinstance(node, dict) else None
    return parts


def _problem(data: Any, loc: tuple[Any, ...], message: str) -> dict[str, Any]:
    parts = _strip_tags(data, loc)
    node_id = None
    if len(parts) >= 2 and parts[0] == "nodes" and isinstance(parts[1], int):
        nodes = data.get("nodes") if isinstance(data, dict) else None
        if isinstance(nodes, list) and parts[1] < len(nodes) and isinstance(nodes[parts[1]], dict):
            node_id = nodes[parts[1]].get("id")
        rest = parts[2:]
    else:
        rest = parts
    field = ""
    for p in rest:
        field += f"[{p}]" if isinstance(p, int) else (("." if field else "") + str(p))
    path = ""
    for p in parts:
        path += f"[{p}]" if isinstance(p, int) else (("." if path else "") + str(p))
    return {"node_id": node_id, "field": field or "definition", "path": path or "definition", "message": message}


def _message(err: Any) -> tuple[str, str | None]:
    kind, msg = err["type"], str(err["msg"])
    hint = None
    m = re.match(r"^Value error, \[([\w.]+)\] (.*)$", msg)
    if m:
        return m.group(2), m.group(1)
    if kind == "missing":
        return f"required; add '{err['loc'][-1]}'", None
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        return f"unknown or missing kind/type ({err.get('ctx', {}).get('tag')!r}); {msg}", "kind"
    if kind == "extra_forbidden":
        return f"unknown field '{err['loc'][-1]}'; remove it (docs/journeys.md lists each node's fields)", None
    return msg.removeprefix("Value error, ") + f" (got {err.get('input')!r})", hint


def parse_journey(data: Any) -> JourneyDefinition:
    """Validate raw JSON into a ``JourneyDefinition`` (fields, segment conditions, the graph)."""
    if not isinstance(data, dict):
        raise JourneyError(
            [{"node_id": None, "field": "definition", "path": "definition", "message": "a journey is a JSON object"}]
        )
    try:
        jd = JourneyDefinition.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            message, extra = _message(err)
            loc = tuple(err["loc"]) + ((extra,) if extra else ())
            p = _problem(data, loc, message)
            if p not in problems:
                problems.append(p)
        raise JourneyError(problems) from None
    problems = graph_problems(jd)
    if problems:
        raise JourneyError(problems)
    return jd


def _err(node_id: str | None, field: str, message: str, index: int | None = None) -> dict[str, Any]:
    path = f"nodes[{index}].{field}" if index is not None else field
    return {"node_id": node_id, "field": field, "path": path, "message": message}


def graph_problems(jd: JourneyDefinition) -> list[dict[str, Any]]:
    """Graph-level problems: ids, edges, branches, reachability, loops without a wait, segment conditions."""
    out: list[dict[str, Any]] = []
    try:
        ZoneInfo(jd.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        out.append(_err(None, "timezone", f"{jd.timezone!r} is not a time zone; use e.g. Asia/Shanghai"))
    index: dict[str, int] = {}
    for i, n in enumerate(jd.nodes):
        if n.id in index:
            out.append(_err(n.id, "id", f"duplicate node id (also nodes[{index[n.id]}]); ids must be unique", i))
        index.setdefault(n.id, i)
        if isinstance(n, ConditionNode):
            names = [b.name for b in n.branches_]
            for j, br in enumerate(n.branches_):
                if br.name == "else" or names.count(br.name) > 1:
                    out.append(_err(n.id, f"branches[{j}].name", f"{br.name!r} repeats or is 'else'; rename it", i))
                try:
                    parse_definition(br.condition, root=f"branches[{j}].condition")
                except DefinitionError as exc:
                    for problem in exc.errors:
                        out.append(_err(n.id, problem["path"], problem["message"], i))
        if isinstance(n, WaitSegmentNode):
            try:
                parse_definition(n.condition, root="condition")
            except DefinitionError as exc:
                for problem in exc.errors:
                    out.append(_err(n.id, problem["path"], problem["message"], i))
        if n.kind in ("split", "experiment"):
            arms = [a.name for a in n.arms]
            for j, a in enumerate(n.arms):
                if arms.count(a.name) > 1 or a.name == "holdout":
                    out.append(_err(n.id, f"arms[{j}].name", f"{a.name!r} repeats or is 'holdout'; rename it", i))
    if jd.start not in index:
        out.append(_err(None, "start", f"start node {jd.start!r} does not exist; name one of the node ids"))
    nodes = jd.node_map()
    seen: dict[tuple[str, str], int] = {}
    for k, e in enumerate(jd.edges):
        if e.from_ not in nodes:
            out.append(_err(None, f"edges[{k}].from", f"no node {e.from_!r}; connect existing nodes"))
            continue
        if e.to not in nodes:
            out.append(_err(e.from_, f"edges[{k}].to", f"no node {e.to!r}; connect existing nodes", None))
        allowed = nodes[e.from_].branches()
        if e.branch not in allowed:
            hint = f"use one of {', '.join(allowed)}" if allowed else "an exit node has no outgoing edges"
            out.append(_err(e.from_, f"edges[{k}].branch", f"branch {e.branch!r} does not exist; {hint}"))
        key = (e.from_, e.branch)
        if key in seen:
            out.append(_err(e.from_, f"edges[{k}].branch", f"branch {e.branch!r} has two edges (edges[{seen[key]}])"))
        seen.setdefault(key, k)
    for n in jd.nodes:
        for name in n.branches():
            if (n.id, name) not in seen:
                out.append(_err(n.id, "branches", f"branch {name!r} leads nowhere; add an edge from it", index[n.id]))
    if out:
        return out
    nxt: dict[str, list[str]] = {n.id: [] for n in jd.nodes}
    for e in jd.edges:
        nxt[e.from_].append(e.to)
    reach, stack = {jd.start}, [jd.start]
    while stack:
        for m in nxt[stack.pop()]:
            if m not in reach:
                reach.add(m)
                stack.append(m)
    for n in jd.nodes:
        if n.id not in reach:
            out.append(_err(n.id, "id", "unreachable from the start node; connect it or delete it", index[n.id]))
    # a loop must pass a wait node, or a customer would cycle for ever in one run
    instant = {n.id for n in jd.nodes if n.kind not in WAIT_KINDS}
    colour: dict[str, int] = {}

    def visit(u: str) -> str | None:
        colour[u] = 1
        for v in nxt[u]:
            if v not in instant:
                continue
            if colour.get(v) == 1:
                return v
            if colour.get(v) is None:
                found = visit(v)
                if found:
                    return found
        colour[u] = 2
        return None

    for n in jd.nodes:
        if n.id in instant and n.id not in colour:
            loop = visit(n.id)
            if loop:
                out.append(_err(loop, "edges", "a loop without a wait node; put a wait in the loop", index[loop]))
                break
    return out
