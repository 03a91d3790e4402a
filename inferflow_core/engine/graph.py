"""Build and validate a DAG once per ``component_dependency`` map (go-compatibility §3.1-3.2)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property

import mmh3

from ..config.model import FEATURE_INITIALIZER


@dataclass(frozen=True)
class Graph:
    """A validated DAG: nodes in a topological order and each node's prerequisites."""

    order: tuple[str, ...]
    prerequisites: Mapping[str, tuple[str, ...]]

    @cached_property
    def stages(self) -> tuple[tuple[str, ...], ...]:
        """The order cut at *barrier* nodes (computed once per graph, used by the executor).

        A barrier is comparable to every other node (each node is its ancestor or descendant), so
        nothing can run concurrently with it: it runs inline in the request's task, with no task,
        no gather and no event-loop round trip. A stage of one barrier is ``(name,)``; the nodes
        between two barriers form a stage run as concurrent tasks (their other prerequisites lie in
        earlier stages). A chain DAG is all barriers.
        """
        ancestors: dict[str, set[str]] = {}
        for node in self.order:
            acc: set[str] = set()
            for dep in self.prerequisites[node]:
                acc.add(dep)
                acc |= ancestors[dep]
            ancestors[node] = acc
        descendants = {node: 0 for node in self.order}
        for node in self.order:
            for anc in ancestors[node]:
                descendants[anc] += 1
        total = len(self.order) - 1
        stages: list[tuple[str, ...]] = []
        group: list[str] = []
        for node in self.order:
            if len(ancestors[node]) + descendants[node] == total:
                if group:
                    stages.append(tuple(group))
                    group = []
                stages.append((node,))
            else:
                group.append(node)
        if group:
            stages.append(tuple(group))
        return tuple(stages)

    @cached_property
    def linked_stages(self) -> frozenset[tuple[str, ...]]:
        """The stages of :attr:`stages` in which a node waits for another node of the same stage."""
        return frozenset(
            stage
            for stage in self.stages
            if any(dep in stage for node in stage for dep in self.prerequisites[node])
        )


def dag_digest(dependency: Mapping[str, Sequence[str]]) -> str:
    """murmur3-x64-128 of the canonical JSON of the map (keys sorted, no spaces), as hex."""
    canonical = json.dumps(dependency, sort_keys=True, separators=(",", ":"))
    return mmh3.hash_bytes(canonical.encode()).hex()


def build_graph(dependency: Mapping[str, Sequence[str]], known: set[str]) -> tuple[Graph | None, list[str]]:
    """Validate ``dependency`` (node -> prerequisites) against ``known`` component names.

    Returns the graph and an empty list, or None and every problem found: unknown nodes, duplicate
    prerequisites, cycles, nodes unreachable from ``feature_initializer``.
    """
    problems: list[str] = []
    known = set(known) | {FEATURE_INITIALIZER}
    prereqs: dict[str, tuple[str, ...]] = {}
    for node, deps in dependency.items():
        if node not in known:
            problems.append(f"node {node!r} is not a configured component")
        for dep in deps:
            if dep not in known:
                problems.append(f"node {node!r} depends on {dep!r}, which is not a configured component")
        if len(set(deps)) != len(deps):
            problems.append(f"node {node!r} lists a prerequisite twice")
        if node in deps:
            problems.append(f"node {node!r} depends on itself")
        prereqs[node] = tuple(dict.fromkeys(deps))
    for deps in list(prereqs.values()):
        for dep in deps:
            prereqs.setdefault(dep, ())
    if prereqs.get(FEATURE_INITIALIZER):
        problems.append(f"{FEATURE_INITIALIZER!r} must not depend on anything")
    extra_roots = [n for n, deps in prereqs.items() if not deps and n != FEATURE_INITIALIZER]
    if FEATURE_INITIALIZER not in prereqs:
        problems.append(
            f"no node depends on {FEATURE_INITIALIZER!r}: the DAG has no root; list {FEATURE_INITIALIZER!r} "
            "as the prerequisite of the first component(s)"
            + (f" (here: {', '.join(map(repr, extra_roots))})" if extra_roots else "")
        )
    else:
        for node in extra_roots:
            problems.append(
                f"node {node!r} has no prerequisites, so the DAG has a second root beside "
                f"{FEATURE_INITIALIZER!r}; {node!r} is not reachable from {FEATURE_INITIALIZER!r} and would "
                f"run without the request's data: add {FEATURE_INITIALIZER!r} to its prerequisites"
            )

    order = _topological_order(prereqs)
    if order is None:
        cyclic = sorted(_nodes_in_cycles(prereqs))
        problems.append(f"the DAG has a cycle through {', '.join(map(repr, cyclic))}")
    elif FEATURE_INITIALIZER in prereqs:
        explained = _reachable(prereqs, extra_roots)
        for node in _unreachable(prereqs):
            if node in extra_roots:
                continue  # said above
            why = " (it depends only on a second root)" if node in explained else " (it would never run)"
            problems.append(f"node {node!r} is not reachable from {FEATURE_INITIALIZER!r}{why}")
    if problems or order is None:
        return None, problems
    return Graph(tuple(order), prereqs), []


def _topological_order(prereqs: Mapping[str, tuple[str, ...]]) -> list[str] | None:
    indegree = {node: len(deps) for node, deps in prereqs.items()}
    dependants: dict[str, list[str]] = {node: [] for node in prereqs}
    for node, deps in prereqs.items():
        for dep in deps:
            dependants[dep].append(node)
    ready = [n for n, d in indegree.items() if d == 0]
    order: list[str] = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for nxt in dependants[node]:
            indegree[nxt] -= 1
            if indegree[nxt] == 0:
                ready.append(nxt)
    return order if len(order) == len(prereqs) else None


def _nodes_in_cycles(prereqs: Mapping[str, tuple[str, ...]]) -> set[str]:
    """Nodes left after repeatedly removing nodes without prerequisites or dependants."""
    remaining = {n: set(d) for n, d in prereqs.items()}
    changed = True
    while changed:
        changed = False
        for node in list(remaining):
            deps = remaining[node] & remaining.keys()
            has_dependant = any(node in d for d in remaining.values())
            if not deps or not has_dependant:
                del remaining[node]
                changed = True
    return set(remaining)


def _reachable(prereqs: Mapping[str, tuple[str, ...]], roots: Sequence[str]) -> set[str]:
    dependants: dict[str, list[str]] = {node: [] for node in prereqs}
    for node, deps in prereqs.items():
        for dep in deps:
            dependants[dep].append(node)
    seen = set(roots)
    stack = list(roots)
    while stack:
        for nxt in dependants.get(stack.pop(), []):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _unreachable(prereqs: Mapping[str, tuple[str, ...]]) -> list[str]:
    seen = _reachable(prereqs, [FEATURE_INITIALIZER])
    return [n for n in prereqs if n not in seen]
