from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from organisations.models import Membership, Organisation


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
    effort over related companies must not hide it (docs/domain-rules.md).
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


@dataclass(frozen=True)
class OrganisationGroups:
    """Every organisation's group subject, and which organisations each user belongs to."""

    subjects: dict[int, str]
    organisations_by_user: dict[int, list[int]]


def organisation_groups_current() -> OrganisationGroups:
    """The groups as they stand now: two queries, whatever the number of organisations."""
    nodes = [
        OrganisationNode(o["id"], o["registration_id"], o["controlled_by_registration_id"])
        for o in Organisation.objects.values(
            "id", "registration_id", "controlled_by_registration_id"
        )
    ]
    by_user: dict[int, list[int]] = defaultdict(list)
    for user_id, organisation_id in Membership.objects.values_list("user_id", "organisation_id"):
        by_user[user_id].append(organisation_id)
    shared = [(ids[0], other) for ids in by_user.values() for other in ids[1:]]
    return OrganisationGroups(organisation_groups(nodes, shared), dict(by_user))
