"""``keybroker get PROFILE`` beyond a plain cache hit: the full resolve, without click.

``keybroker.cli.entry`` parses the command line (a whitelist) and serves plain hits through
:mod:`keybroker.fastpath`; everything else comes here with the fast path's
:class:`~keybroker.fastpath.main.Probe`, and continues from it: the data key it loaded, the
index it found current and the hit decision it made are not redone. When the probe found the
profile's record for this environment, the request is built from that record (the settings
the config had when it was last read and trust-checked; the index is rebuilt whenever a config
file changes) and the TOML is not parsed at all; otherwise the config is parsed once.
Anything unusual (``--help``, an unknown flag) goes to the click command instead, which gives
the proper usage message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keybroker.cli.runner import debug_enabled, run_helper
from keybroker.fastpath import reasons

if TYPE_CHECKING:
    from keybroker.fastpath.main import Probe
    from keybroker.model import Request


def run_get(opts: dict[str, Any], probe: Probe | None = None) -> int:
    """Resolve the profile and print its key (shared by the fast path and the click command)."""
    from keybroker.cli.common import (  # noqa: PLC0415
        environment,
        flag_options,
        load_config,
        open_cache,
    )
    from keybroker.deadline import mark_call_start  # noqa: PLC0415
    from keybroker.resolve import resolve  # noqa: PLC0415

    if probe is not None:
        mark_call_start(probe.started)
        env = dict(probe.env)
    else:
        env = environment(opts.get("config"))
    debug = debug_enabled(bool(opts.get("debug")), env)

    def body() -> Any:
        cache, _ = open_cache(env, probe)
        options = flag_options(opts.get("max_age"), bool(opts.get("reject_repeats")))
        request = _indexed_request(opts, probe, options)
        if request is None:
            from keybroker.config import request_for  # noqa: PLC0415

            config = load_config(env, cache, probe)
            request = request_for(config, opts["profile"], env, options)
        outcome = resolve(
            request, env, no_cache=bool(opts.get("no_cache")), debug=debug, cache=cache, probe=probe
        )
        if probe is not None and probe.why == reasons.ENV_CHANGED and cache is not None:
            from keybroker.config.index import remember_profile  # noqa: PLC0415

            remember_profile(config, env, str(cache.root), opts["profile"], cache.loaded_key)
        return outcome

    return run_helper(body, debug)


def _indexed_request(
    opts: dict[str, Any], probe: Probe | None, flag_options: dict[str, Any]
) -> Request | None:
    """The request from the probe's index record, when the probe matched this environment and
    decided with exactly these flags (``--max-age`` is never on the fast path); else None."""
    from keybroker.model import Request  # noqa: PLC0415

    if (
        probe is None
        or probe.record is None
        or probe.options is None
        or (
            probe.record.settings is None
            or probe.why == reasons.ENV_CHANGED
            or flag_options.get("max_age") is not None
        )
    ):
        return None
    return Request(
        probe.record.source,
        dict(probe.record.settings),
        probe.options,
        profile=str(opts["profile"]),
    )
