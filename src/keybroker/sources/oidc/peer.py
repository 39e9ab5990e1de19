"""Who is on the other end of a loopback TCP connection: the owner uid of the peer's socket.

The sign-in callback listens on 127.0.0.1, where every local user can connect. On Linux the
kernel lists every TCP socket with its owner in ``/proc/net/tcp`` and ``/proc/net/tcp6``
(the ``uid`` column); the client's socket is the one whose local address is the connection's
remote end and whose remote address is our listening end. Elsewhere (macOS, Windows, a /proc
that cannot be read) this returns None and the callback relies on ``state`` alone
(docs/sources/oidc.md says so).
"""

from __future__ import annotations

import ipaddress

#: TIME_WAIT sockets have no owner any more (the kernel shows uid 0): never a match.
_TIME_WAIT = "06"


def _hex_address(host: str, port: int) -> str | None:
    """``host:port`` as the kernel prints it (address words in host byte order)."""
    try:
        ip = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    packed = ip.packed
    words = [packed[i : i + 4] for i in range(0, len(packed), 4)]
    text = "".join(int.from_bytes(w, "little").to_bytes(4, "big").hex() for w in words)
    return f"{text.upper()}:{port:04X}"


#: What :func:`peer_uid` returns when the system lists sockets but none matches (the client
#: already closed its end): no user's, so never "ours".
NO_OWNER = -1


def peer_uid(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The uid owning the client's end of the connection ``client`` → ``server``.

    None: this system does not say (not Linux, /proc unreadable); :data:`NO_OWNER`: it says,
    but no live socket matches.
    """
    local = _hex_address(client[0], client[1])
    remote = _hex_address(server[0], server[1])
    if local is None or remote is None:
        return None
    readable = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                lines = handle.read().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            if len(fields) < 8:
                continue
            mine, theirs, state, uid = fields[1], fields[2], fields[3], fields[7]
            if state == _TIME_WAIT:
                continue
            if _same(mine, local) and _same(theirs, remote) and uid.isdigit():
                return int(uid)
    return NO_OWNER if readable else None


def _same(kernel: str, wanted: str) -> bool:
    """Equal, also when one side is IPv4 and the other its IPv4-mapped IPv6 form."""
    if kernel == wanted:
        return True
    address, _, port = kernel.partition(":")
    if len(address) == 32 and address.startswith("0000000000000000FFFF0000"):
        return f"{address[24:]}:{port}" == wanted
    return False
