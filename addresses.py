"""Who a caller is by address: whether an address names one visitor (``public``), the group a share is
counted by (``group``: an IPv6 caller's /64, an IPv4 one carried in IPv6 that IPv4 address), the wider
groups a subscriber's /64s count in together (``wider``: its /56 and /48), and on a Space the Space's
proxy trusted with no setting (``trust_space_proxy``).

Every per-address share (instant events, uploads under way, the queue, the agents' table) reads the
address uvicorn resolved: ``X-Forwarded-For``'s rightmost entry that is not a trusted proxy's hop.
uvicorn trusts ``FORWARDED_ALLOW_IPS`` (by default this machine alone). A Space's requests all come
through Hugging Face's proxy from a private address (10.16.3.80 and the like, never the visitor's),
which appends the visitor's address to ``X-Forwarded-For``: untrusted, every visitor would be that one
private address unless the operator set the variable by hand.
"""

from __future__ import annotations

import ipaddress
import os

# The networks a Space's proxy hops come from: private (RFC 1918, RFC 4193), shared (RFC 6598) and this
# machine. None of them is ever a visitor's own public address, so trusting them lets no caller name
# itself: uvicorn walks ``X-Forwarded-For`` from the right past these hops and takes the first address
# outside them, the one the proxy appended, and never what a caller wrote to its left.
PROXY_NETWORKS = (
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "fc00::/7",
    "::1",
    # The same hops as a dual-stack socket reports them (``::ffff:10.16.3.80``).
    "::ffff:10.0.0.0/104",
    "::ffff:172.16.0.0/108",
    "::ffff:192.168.0.0/112",
    "::ffff:100.64.0.0/106",
    "::ffff:127.0.0.0/104",
)
# An IPv6 subscriber is handed a /64 at least (RFC 6177): one caller holds thousands of addresses there.
V6_PREFIX = 64
# What one subscriber may hold beyond its /64: a home is handed a /56 (256 /64s), a site a /48 (65,536; a
# tunnel broker hands one out free). A visitor's share stays its /64's; these count its neighbours' too.
WIDER_PREFIXES = {"subscriber": 56, "site": 48}
# NAT64's well-known prefix (RFC 6052): an IPv4 address written into IPv6 by a translator.
NAT64 = ipaddress.ip_network("64:ff9b::/96")
TRUSTED_ON_SPACE = (
    "On a Space: the proxy's hops from {networks} trusted (FORWARDED_ALLOW_IPS was not set), so each visitor "
    "is told apart by the address the Space's proxy appends to X-Forwarded-For (docs/deployment.md)."
)
TOLD_APART = (
    "Visitors are told apart by address: the first forwarded request ({hops} X-Forwarded-For entries) was "
    "counted by the public {kind} the proxy appended (said once; no address is logged)."
)


def public(host: str | None) -> bool:
    """Whether ``host`` names one visitor: a loopback or private address is more likely a proxy or this
    machine itself (every per-address share counts it as nobody)."""
    return group(host) is not None


def group(host: str | None) -> str | None:
    """The group a public address's shares are counted by: an IPv4 address itself, an IPv6 address's /64
    (an IPv4 address carried in IPv6 is that IPv4 address: ``_unwrapped``); None for no public address."""
    address = _address(host)
    if address is None:
        return None
    if address.version == 4:
        return str(address)
    return str(ipaddress.ip_network(f"{address}/{V6_PREFIX}", strict=False))


def wider(host: str | None) -> dict[str, str]:
    """The wider groups a public IPv6 address counts in beside its /64, by kind (``WIDER_PREFIXES``: its
    /56, a subscriber's, and its /48, a site's); none for IPv4 or no public address."""
    address = _address(host)
    if address is None or address.version == 4:
        return {}
    return {kind: str(ipaddress.ip_network(f"{address}/{bits}", strict=False)) for kind, bits in WIDER_PREFIXES.items()}


def _address(host: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = _unwrapped(ipaddress.ip_address(host or ""))
    except ValueError:
        return None
    return address if address.is_global else None


def _unwrapped(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The IPv4 address an IPv6 one carries, where it carries one: mapped (``::ffff:a.b.c.d``, a dual-stack
    socket's), NAT64's well-known prefix, 6to4 (``2002::/16``: the whole /48 is that IPv4 address's) and
    Teredo (its client's public address). Each names the IPv4 host behind it, which a /64 of the wrapper
    did not: a 6to4 host held 65,536 /64s, and every NAT64 address of the internet fell in one /64."""
    if address.version == 4:
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return address


def loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine itself."""
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def on_space() -> bool:
    """Whether the studio runs on a Hugging Face Space (the runtime sets ``SPACE_ID``)."""
    return bool(os.environ.get("SPACE_ID"))


def trust_space_proxy() -> str | None:
    """On a Space, where the operator named no proxy, uvicorn told to trust the proxy's hops
    (``PROXY_NETWORKS``): what the log says, or None where nothing changed. Called before ``launch``,
    which reads the variable when it makes uvicorn's config."""
    if not on_space() or os.environ.get("FORWARDED_ALLOW_IPS"):
        return None
    os.environ["FORWARDED_ALLOW_IPS"] = ",".join(PROXY_NETWORKS)
    return TRUSTED_ON_SPACE.format(networks=", ".join(PROXY_NETWORKS))


def told_apart(forwarded: str, host: str | None) -> str | None:
    """The log line that proves visitors are told apart: how many ``X-Forwarded-For`` entries a request
    came with and the kind of public address it was counted by; None where it named no public address."""
    named = group(host)
    hops = len([entry for entry in forwarded.split(",") if entry.strip()])
    if named is None or not hops:
        return None
    return TOLD_APART.format(hops=hops, kind="IPv6 /64" if "/" in named else "IPv4 address")
