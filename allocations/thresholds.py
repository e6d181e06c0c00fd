"""Threshold levels and organisation groups as pure functions (no database)."""

from collections.abc import Iterable
from dataclasses import dataclass

from .estimates import PolicyFigures

GPAI_WARNING = "gpai_warning"
GPAI = "gpai"
SYSTEMIC_RISK_WARNING = "systemic_risk_warning"
SYSTEMIC_RISK = "systemic_risk"


@dataclass(frozen=True)
class Level:
    name: str
    threshold: float


def allocation_levels(percentages: Iterable[int]) -> list[Level]:
    """`allocation_75` etc.: the share of the grant used, as a fraction."""
    return [Level(f"allocation_{p}", p / 100) for p in sorted(set(percentages))]


def compute_levels(policy: PolicyFigures) -> list[Level]:
    return [
        Level(GPAI_WARNING, policy.gpai_flop * policy.warning_share),
        Level(GPAI, policy.gpai_flop),
        Level(SYSTEMIC_RISK_WARNING, policy.systemic_risk_flop * policy.warning_share),
        Level(SYSTEMIC_RISK, policy.systemic_risk_flop),
    ]


def levels_reached(value: float, levels: Iterable[Level]) -> list[Level]:
    """A level is reached when the value meets its threshold (art. 52(1): "met")."""
    return [level for level in levels if value >= level.threshold]


@dataclass(frozen=True)
class OrganisationNode:
    id: int
    registration_id: str
    controlled_by: str
    name: str = ""


def organisation_groups(
    organisations: Iterable[OrganisationNode], shared_members: Iterable[tuple[int, int]] = ()
) -> dict[int, str]:
    """Map each organisation id to its group's subject: the ultimate controller's registration id.

    Organisations belong to one group when they share a registration id, when one controls the
    other (directly or through a chain), or when they share a member: splitting one training
    effort over related companies must not hide it (DOMAIN.md, "Evading thresholds by splitting").
    """
    nodes = {node.id: node for node in organisations}
    parent = {node_id: node_id for node_id in nodes}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    by_registration: dict[str, list[int]] = {}
    for node in nodes.values():
        by_registration.setdefault(_norm(node.registration_id), []).append(node.id)
    for ids in by_registration.values():
        for other in ids[1:]:
            union(ids[0], other)
    by_controller: dict[str, list[int]] = {}
    for node in nodes.values():
        if _norm(node.controlled_by):
            by_controller.setdefault(_norm(node.controlled_by), []).append(node.id)
        for controller in by_registration.get(_norm(node.controlled_by), []):
            union(node.id, controller)
    # Sister companies under one controller are one group even when the controller never
    # applied itself.
    for ids in by_controller.values():
        for other in ids[1:]:
            union(ids[0], other)
    for a, b in shared_members:
        if a in nodes and b in nodes:
            union(a, b)

    members: dict[int, list[OrganisationNode]] = {}
    for node_id, node in nodes.items():
        members.setdefault(find(node_id), []).append(node)
    subjects = {}
    for group in members.values():
        registrations = {_norm(n.registration_id) for n in group}
        outside = sorted(
            _norm(n.controlled_by)
            for n in group
            if _norm(n.controlled_by) and _norm(n.controlled_by) not in registrations
        )
        # The ultimate controller: a controller outside the group, else the member nobody in
        # the group controls.
        roots = sorted(
            _norm(n.registration_id)
            for n in group
            if not _norm(n.controlled_by) or _norm(n.controlled_by) not in registrations
        )
        subject = (outside or roots or sorted(registrations))[0]
        for node in group:
            subjects[node.id] = subject
    return subjects


def _norm(registration_id: str) -> str:
    return "".join(registration_id.split()).upper()
