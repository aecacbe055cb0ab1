"""Who a caller is by address: whether an address names one visitor (``public``), the group a share is
counted by (``group``: an IPv6 caller's /64), and on a Space the Space's own proxy trusted with no
setting (``trust_space_proxy``).

Every per-address share (instant events, uploads under way, the queue, the agents' table) reads the
address uvicorn resolved: ``X-Forwarded-For``'s rightmost entry that is not a trusted proxy's hop.
uvicorn trusts ``FORWARDED_ALLOW_IPS`` (by default this machine alone). A Space's requests all come
through Hugging Face's proxy from a private address (10.16.3.80 and the like, never the visitor's),
which appends the visitor's own address to ``X-Forwarded-For``: untrusted, every visitor was that one
private address until the operator set the variable by hand.
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
    (an IPv4 one written as IPv6 is that IPv4 address); None for no public address."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not address.is_global:
        return None
    if address.version == 4:
        return str(address)
    return str(ipaddress.ip_network(f"{address}/{V6_PREFIX}", strict=False))


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
