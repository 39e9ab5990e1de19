"""``keybroker get PROFILE`` beyond a plain cache hit: the full resolve, without click.

``keybroker.cli.entry`` parses the command line (a whitelist) and serves plain hits through
:mod:`keybroker.fastpath`; everything else comes here. Anything unusual (``--help``, an unknown
flag) goes to the click command instead, which gives the proper usage message.
"""

from __future__ import annotations

from typing import Any

from keybroker.cli.runner import arm_watchdog, debug_enabled, run_helper
from keybroker.fastpath import reasons


def run_get(opts: dict[str, Any], why_not_hot: str = "", started: float | None = None) -> int:
    """Resolve the profile and print its key (shared by the fast path and the click command)."""
    from keybroker.cli.common import (  # noqa: PLC0415
        environment,
        flag_options,
        open_cache,
        profile_request,
    )
    from keybroker.deadline import mark_call_start  # noqa: PLC0415
    from keybroker.resolve import resolve  # noqa: PLC0415

    if started is not None:
        mark_call_start(started)
    env = environment(opts.get("config"))
    debug = debug_enabled(bool(opts.get("debug")), env)

    def body() -> Any:
        cache, _ = open_cache(env)
        options = flag_options(opts.get("max_age"), bool(opts.get("reject_repeats")))
        request = profile_request(env, opts["profile"], cache, options)
        arm_watchdog(request.options.timeout)
        outcome = resolve(
            request, env, no_cache=bool(opts.get("no_cache")), debug=debug, cache=cache
        )
        if why_not_hot == reasons.ENV_CHANGED and cache is not None:
            from keybroker.config import load  # noqa: PLC0415
            from keybroker.config.index import remember_profile  # noqa: PLC0415

            remember_profile(load(env), env, str(cache.root), opts["profile"])
        return outcome

    return run_helper(body, debug)
