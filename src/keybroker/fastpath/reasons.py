"""Why the fast path did not print a key: the reasons it hands to the full path.

One name per reason, so the full path (``keybroker.cli.fastget``, ``keybroker.cli.standalone``)
and the fast path compare names, not string literals that drift apart. Standard library free:
this module is on the hit path.
"""

from __future__ import annotations

#: no sealed index beside the cache (first call, or it could not be read)
NO_INDEX = "index"
#: the profile's indexed variants were made in another environment (VAULT_ADDR, AWS_PROFILE…)
ENV_CHANGED = "env"
#: the profile or the standalone command line is not in the index
NOT_INDEXED = "not-indexed"
#: indexed, but no fresh entry could be served
NOT_HIT = "not-hit"
#: the cache directory is unsafe to use
UNSAFE = "cache-dir"

# from the hit decision (keybroker.fastpath.hit.serve)
#: no usable entry
MISS = "miss"
#: an entry, in a refresh window or expired
NOT_FRESH = "not-fresh"
#: fresh, but this caller asked again: its key was refused
REPEAT = "repeat"
#: the profile's storage is not the disk cache
OFF = "storage-off"
