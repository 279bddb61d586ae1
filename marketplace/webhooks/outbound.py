"""Outbound requests to receivers, guarded against server-side request forgery: HTTPS only
(unless WEBHOOKS_ALLOW_HTTP), no private, loopback, link-local, multicast or reserved address
(unless WEBHOOKS_ALLOW_PRIVATE), the host resolved once and the connection made to that very
address (no second lookup a DNS rebinding could answer differently), time and size limits."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit


class Refused(Exception):
    """The URL may not be called (scheme, address); the message says why."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


def _forbidden(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def check_url(url: str, *, allow_http: bool, allow_private: bool) -> None:
    """Refuse what can be judged without a lookup: the scheme, the shape, a literal address."""
    if any(ord(c) <= 0x20 or ord(c) == 0x7f for c in url):
        raise Refused("Must not contain spaces or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise Refused("Not a valid URL.") from e
    if parts.scheme not in (("https", "http") if allow_http else ("https",)):
        raise Refused("Must be an https:// URL.")
    if not parts.hostname or parts.username or parts.password:
        raise Refused("Must name a host, without a user name or password.")
    if port == 0:
        raise Refused("Not a valid port.")
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return
    if not allow_private and _forbidden(literal):
        raise Refused("Must not point at a private, loopback or reserved address.")


def resolve(host: str, port: int, *, allow_private: bool) -> str:
    """One address of ``host`` that may be called; Refused if any it has may not (a name that
    also resolves to a private address is refused whole)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise Refused(f"Cannot resolve {host}.") from e
    addresses = [str(info[4][0]) for info in infos]
    if not allow_private:
        for address in addresses:
            if _forbidden(ipaddress.ip_address(address.split("%")[0])):
                raise Refused(f"{host} resolves to a private, loopback or reserved address.")
    return addresses[0]


class _Pinned(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, body: bytes, headers: dict[str, str], *, allow_http: bool,
         allow_private: bool, timeout: float, max_bytes: int) -> Answer:
    """POST ``body`` to ``url``; the answer's status and at most ``max_bytes`` of its body.
    Raises Refused for a URL or address that may not be called, OSError for network faults."""
    check_url(url, allow_http=allow_http, allow_private=allow_private)
    parts = urlsplit(url)
    host = parts.hostname or ""
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    address = resolve(host, port, allow_private=allow_private)
    connection = (_PinnedTLS if tls else _Pinned)(host, port, address, timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", path, body=body, headers={
            **headers, "Content-Type": "application/json", "User-Agent": "nearby-webhooks/1"})
        response = connection.getresponse()
        text = response.read(max_bytes).decode("utf-8", "replace")
        return Answer(response.status, text)
    finally:
        connection.close()
