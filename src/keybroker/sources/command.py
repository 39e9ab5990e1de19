"""``command``: run an existing helper (``op read …``, ``gcloud auth print-access-token``) and
put the shared cache in front of it.

The command is an argv list run without a shell (``shell = true`` runs a string through
``/bin/sh -c``), with stdin closed so it cannot hang waiting for input, and a timeout within
the call's deadline. Its stdout is the secret and is never echoed; on failure only a short,
scrubbed summary of its stderr is shown.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from typing import Any

from keybroker.errors import InvalidSecret, SecretNotFound, Unreachable, UsageError
from keybroker.model import Request, Secret
from keybroker.sources.base import BaseSource, FetchContext, NoIdentity, Setting

_STDERR_SUMMARY = 300


class CommandSource(BaseSource):
    name = "command"
    default_storage = "disk"
    settings = (
        Setting(
            "command",
            kind="str_or_argv",
            required=True,
            help='argv list, e.g. ["op", "read", "op://vault/litellm/key"]',
        ),
        Setting("shell", kind="bool", help="run a string command through /bin/sh -c"),
        Setting("cwd", help="working directory for the command", identity=False),
        Setting(
            "identity_env",
            kind="str_list",
            identity=False,
            help="variables holding the credentials the command uses (e.g. "
            '["OP_SERVICE_ACCOUNT_TOKEN"]): cached keys are bound to their values',
        ),
        Setting(
            "identity_files",
            kind="str_list",
            identity=False,
            help="files holding the credentials the command uses; cached keys are bound "
            "to their content",
        ),
    )

    def canonical(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
        command = settings["command"]
        return {"command": command, "shell": bool(settings.get("shell", False))}

    def identity_inputs(
        self, settings: Mapping[str, Any], env: Mapping[str, str]
    ) -> list[tuple[str, str]] | NoIdentity:
        """The command's credentials are its own business: the profile may name them."""
        inputs = [("env", str(name)) for name in settings.get("identity_env") or ()]
        files = settings.get("identity_files") or ()
        inputs += [("file", os.path.expanduser(str(p))) for p in files]
        return inputs or NoIdentity(
            "the profile names no identity_env/identity_files: every caller shares the entry"
        )

    def describe(self, settings: Mapping[str, Any]) -> str:
        command = settings.get("command")
        if isinstance(command, list):
            return str(command[0]) if command else "command"
        return str(command).split(" ", 1)[0]

    def _argv(self, request: Request) -> list[str]:
        command = request.settings["command"]
        shell = bool(request.settings.get("shell", False))
        if shell:
            text = command if isinstance(command, str) else " ".join(command)
            return ["/bin/sh", "-c", text]
        if isinstance(command, str):
            raise UsageError(
                f"{request.where()}: 'command' is a string but shell is not enabled",
                'write it as a list, e.g. command = ["op", "read", "op://…"], or set shell = true',
            )
        return list(command)

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:
        argv = self._argv(request)
        cwd = request.settings.get("cwd")
        try:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=ctx.timeout(),
                cwd=os.path.expanduser(cwd) if cwd else None,
                env=dict(ctx.env),
                check=False,
            )
        except FileNotFoundError:
            raise UsageError(
                f"{request.where()}: command '{argv[0]}' not found",
                "install it or use an absolute path in 'command'",
            ) from None
        except PermissionError:
            raise UsageError(f"{request.where()}: command '{argv[0]}' is not executable") from None
        except subprocess.TimeoutExpired:
            raise Unreachable(
                f"{request.where()}: command '{argv[0]}' did not finish within the deadline",
                "raise KEYBROKER_TIMEOUT or check why the command hangs",
            ) from None
        try:
            value = proc.stdout.decode("ascii").strip()
        except UnicodeDecodeError:
            ctx.sensitive(proc.stdout.decode("utf-8", "replace").strip())
            value = None
        ctx.sensitive(value)
        if proc.returncode != 0:
            summary = _summarise(proc.stderr, value)
            raise Unreachable(
                f"{request.where()}: command '{argv[0]}' exited with status {proc.returncode}"
                + (f": {summary}" if summary else " (no stderr)"),
                "run the command by hand to see what it needs",
            )
        if value is None:
            raise InvalidSecret(
                f"{request.where()}: command '{argv[0]}' printed non-ASCII bytes",
                "a key must be one token of printable ASCII",
            )
        if not value:
            raise SecretNotFound(f"{request.where()}: command '{argv[0]}' printed nothing")
        return Secret(value, source=self.name)


def _summarise(stderr: bytes, stdout_value: str | None) -> str:
    """The last lines of stderr, shortened, with stdout's words and anything that looks like
    a credential (:func:`~keybroker.redact.mask_words`) removed.

    The command had the whole environment, so its stderr may quote a token keybroker never
    registered (``env | grep TOKEN``, a verbose HTTP client); a long opaque run is cut.
    """
    from keybroker.redact import mask_words  # noqa: PLC0415

    text = stderr.decode("utf-8", "replace")
    if stdout_value:
        for token in stdout_value.split():
            if len(token) >= 4:
                text = text.replace(token, "***")
    text = mask_words(text)  # every token-like word, whatever its length (issue 20 item 15)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    summary = " / ".join(lines[-3:])
    printable = "".join(ch if ch.isprintable() else "?" for ch in summary)
    if len(printable) > _STDERR_SUMMARY:
        printable = printable[: _STDERR_SUMMARY - 1] + "…"
    return printable


SOURCE = CommandSource()
