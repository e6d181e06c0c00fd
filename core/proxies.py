"""The `TRUSTED_PROXIES` setting, read before Django is set up (settings.py calls this)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    """`count` proxies in front of the app, or the proxies' own addresses and networks."""

    count: int = 0
    networks: tuple[Network, ...] = ()

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def trusted_proxies_parse(value: str) -> TrustedProxies:
    """`TRUSTED_PROXIES`: empty (no proxy), a number of proxies, or a comma list of addresses
    and networks (`10.0.0.2,172.18.0.0/16`)."""
    value = (value or "").strip()
    if not value:
        return TrustedProxies()
    if value.isdigit():
        return TrustedProxies(count=int(value))
    networks = []
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"TRUSTED_PROXIES: {part!r} is neither a number of proxies nor an address or "
                "network (e.g. 1, or 10.0.0.2,172.18.0.0/16)."
            ) from None
    return TrustedProxies(networks=tuple(networks))
