"""keybroker: short-lived credentials for LLM tools.

The package root stays empty on purpose: the cache-hit path imports it, and anything
imported here would be paid by every Claude Code session on every helper run.
"""

__version__ = "0.2.0"
