from django import template

from core.identity import FederatedIdentity, claims_merge, identity_from_claims

register = template.Library()


@register.filter
def federated_identity(social_account) -> FederatedIdentity:
    """The subject, ORCID iD and eduPersonUniqueId a provider gave for a linked account."""
    return identity_from_claims(claims_merge(social_account.extra_data))
