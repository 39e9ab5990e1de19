"""``keybroker-vault``, ``keybroker-aws``, ``keybroker-keychain``, ``keybroker-oidc``.

Each is the same helper with its source's settings as flags (from the source's schema), so
a source gains its standalone flags by declaring its settings. ``--profile P`` starts from a
profile and lets flags override it. A standalone call and the equivalent profile share one
cache entry (the entry is keyed by the canonical request, not by the profile name).
argparse, not click: this is a hot path too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keybroker import flags
from keybroker.cli.runner import debug_enabled, report, run_helper
from keybroker.fastpath import reasons

if TYPE_CHECKING:
    from keybroker.fastpath.main import Probe


def _parser(source: Any) -> Any:
    import argparse  # noqa: PLC0415

    from keybroker import __version__  # noqa: PLC0415

    parser = argparse.ArgumentParser(
        prog=f"keybroker-{source.name}",
        description=f"Print a key from the {source.name} source (for Claude Code's apiKeyHelper).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    for item in flags.of(flags.STANDALONE):
        if item.kind == flags.SWITCH:
            parser.add_argument(item.name, dest=item.dest, action="store_true", help=item.help)
        else:
            parser.add_argument(item.name, dest=item.dest, help=item.help)
    for setting in source.settings:
        # what differs between kinds is how the flag takes its value; unset is always None
        # (the profile's value, or the source's default, then applies)
        how: dict[str, Any]
        if setting.kind == "bool":
            how = {"action": argparse.BooleanOptionalAction}
        elif setting.kind in ("argv", "str_list"):
            how = {"action": "append"}
        else:
            how = {"choices": setting.choices}
        parser.add_argument(
            setting.cli_flag, dest=setting.name, help=setting.help, default=None, **how
        )
    return parser


def run_full(source_name: str, argv: list[str], probe: Probe | None = None) -> int:
    """The full path of ``keybroker-<source>``: parse, resolve, print (or report); it
    continues from the fast path's ``probe`` (see :mod:`keybroker.cli.fastget`)."""
    from keybroker.deadline import mark_call_start  # noqa: PLC0415
    from keybroker.sources.base import coerce, get_source  # noqa: PLC0415

    mark_call_start(probe.started if probe is not None else None)
    why_not = probe.why if probe is not None else ""
    debug = debug_enabled("--debug" in argv)
    try:
        source = get_source(source_name)
    except BaseException as exc:
        return report(exc, debug)
    ns = _parser(source).parse_args(argv)

    def body() -> Any:
        from keybroker import config as configmod  # noqa: PLC0415
        from keybroker.cli.common import (  # noqa: PLC0415
            environment,
            flag_options,
            load_config,
            open_cache,
        )
        from keybroker.errors import UsageError  # noqa: PLC0415
        from keybroker.model import Request  # noqa: PLC0415
        from keybroker.resolve import resolve  # noqa: PLC0415

        env = environment(ns.config)
        flag_settings = {
            s.name: coerce(s, getattr(ns, s.name), s.cli_flag)
            for s in source.settings
            if getattr(ns, s.name) is not None
        }
        options = flag_options(ns.max_age, ns.reject_repeats)
        cache, _ = open_cache(env, probe)
        config = load_config(env, cache, probe)
        if ns.profile:
            profile = config.profile(ns.profile)
            if profile.source != source_name:
                raise UsageError(
                    f"profile '{ns.profile}' uses source '{profile.source}', not '{source_name}'",
                    f"run: keybroker get {ns.profile}",
                )
            request = configmod.request_for(config, ns.profile, env, options, flag_settings)
        else:
            built = configmod.build_options(
                source.default_storage, {}, config.defaults, env, options
            )
            settings = dict(config.source_defaults.get(source_name, {}))
            settings.update(flag_settings)
            request = Request(source_name, settings, built)
        outcome = resolve(request, env, no_cache=ns.no_cache, debug=debug, cache=cache, probe=probe)
        unindexed = why_not in (reasons.NOT_INDEXED, reasons.ENV_CHANGED)
        if cache is not None and unindexed and not ns.no_cache:
            _remember(source_name, argv, ns, config, request, env, cache)
        return outcome

    return run_helper(body, debug)


def _remember(
    source_name: str, argv: list[str], ns: Any, config: Any, request: Any, env: Any, cache: Any
) -> None:
    """Let the fast path answer this command line next time (plain flag lines only)."""
    from keybroker.config.index import remember, remember_profile  # noqa: PLC0415
    from keybroker.fastpath.argv import parse_standalone, standalone_key  # noqa: PLC0415

    given = parse_standalone(argv)
    if given is None:
        return
    given.pop("config", None)
    if list(given) == ["profile"]:
        remember_profile(config, env, str(cache.root), ns.profile, cache.loaded_key)
        return
    profile_options = config.profiles[ns.profile].options if ns.profile else {}
    remember(
        config,
        env,
        str(cache.root),
        "standalone",
        standalone_key(source_name, given),
        source_name,
        request.settings,
        profile_options,
        cache.loaded_key,
    )
