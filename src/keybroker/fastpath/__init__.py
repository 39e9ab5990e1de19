"""The one cache-hit path: a plain hit of ``keybroker get`` or ``keybroker-<source>``.

Every Claude Code session runs its helper every few minutes, so a hit should cost little more
than starting Python and importing AES-GCM. This package answers it from the narrow profile
index next to the cache and the sealed entry, and is also what the full path
(:mod:`keybroker.resolve`) calls first, so the two can never disagree about what is a hit:

- :mod:`.argv` parses the command line as a whitelist (anything else → the full path);
- :mod:`.hit` decides whether an entry may be served as it is (freshness, repeat detection);
- :mod:`.main` is the executables' entry: index → entry name → hit, or the full path.

Rule (checked by tests/test_architecture.py): nothing here imports click, tomllib,
platformdirs, :mod:`keybroker.resolve`, :mod:`keybroker.config` or any source module.
"""
