"""``keybroker get PROFILE``: the apiKeyHelper command, without click.

Claude Code runs this every few minutes in every session, so it is parsed by hand here;
anything unusual (``--help``, an unknown flag) falls back to the click command, which gives
the proper usage message.
"""

from __future__ import annotations

from keybroker.cli.runner import arm_watchdog, debug_enabled, run_helper

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from typing import Any


def parse(argv: list[str]) -> dict[str, Any] | None:
    """The options of ``get``, or None when click should handle the command line."""
    opts: dict[str, Any] = {"profile": None, "no_cache": False, "debug": False}
    opts.update({"config": None, "max_age": None, "reject_repeats": False})
    args = iter(argv)
    for arg in args:
        if arg == "--no-cache":
            opts["no_cache"] = True
        elif arg == "--debug":
            opts["debug"] = True
        elif arg == "--reject-repeats":
            opts["reject_repeats"] = True
        elif arg in ("--config", "--max-age"):
            value = next(args, None)
            if value is None:
                return None
            opts[arg[2:].replace("-", "_")] = value
        elif arg.startswith(("--config=", "--max-age=")):
            key, _, value = arg[2:].partition("=")
            opts[key.replace("-", "_")] = value
        elif arg.startswith("-") or opts["profile"] is not None:
            return None
        else:
            opts["profile"] = arg
    return opts if opts["profile"] else None


def try_hit(opts: dict[str, Any]) -> tuple[str | None, str]:
    """Serve a plain cache hit without loading the full machinery (see keybroker.hot)."""
    if opts.get("no_cache") or opts.get("debug") or opts.get("max_age") is not None:
        return None, "flags"
    import os  # noqa: PLC0415

    from keybroker.hot import try_profile  # noqa: PLC0415

    env: Any = os.environ
    if opts.get("config"):
        env = dict(os.environ, KEYBROKER_CONFIG=opts["config"])
    flags = {"repeat": "on"} if opts.get("reject_repeats") else {}
    return try_profile(opts["profile"], env, flags)


def run_get(opts: dict[str, Any], why_not_hot: str = "") -> int:
    """Resolve the profile and print its key (shared by the fast path and the click command)."""
    from keybroker.cli.common import environment, open_cache, profile_request  # noqa: PLC0415
    from keybroker.resolve import resolve  # noqa: PLC0415

    env = environment(opts.get("config"))
    debug = debug_enabled(bool(opts.get("debug")), env)

    def body() -> Any:
        from keybroker.durations import parse_duration  # noqa: PLC0415
        from keybroker.errors import UsageError  # noqa: PLC0415

        flag_options: dict[str, Any] = {}
        if opts.get("max_age") is not None:
            try:
                flag_options["max_age"] = parse_duration(opts["max_age"])
            except ValueError as exc:
                raise UsageError(f"--max-age: {exc}") from None
        if opts.get("reject_repeats"):
            flag_options["repeat"] = "on"
        cache, _ = open_cache(env)
        request = profile_request(env, opts["profile"], cache, flag_options)
        arm_watchdog(request.options.timeout)
        outcome = resolve(
            request, env, no_cache=bool(opts.get("no_cache")), debug=debug, cache=cache
        )
        if why_not_hot == "env" and cache is not None:
            from keybroker.config import remember_hot  # noqa: PLC0415

            remember_hot(str(cache.root), env, opts["profile"])
        return outcome

    return run_helper(body, debug)
