#!/bin/sh
# keybroker-helper.sh: find keybroker when Claude Code starts with a minimal PATH, then exec it.
#
# Claude Code runs apiKeyHelper with /bin/sh. Started from an IDE, a desktop launcher or
# launchd, its PATH is often just /usr/bin:/bin, so a bare "keybroker get PROFILE" fails with
# "command not found". Use this wrapper instead (or the absolute path that
# `keybroker claude configure` writes):
#
#   "apiKeyHelper": "/path/to/keybroker-helper.sh get litellm"
#
# It replaces itself with keybroker (exec), so keybroker still sees Claude Code's shell as
# its parent: repeat detection (a quick second call after a 401) keeps working, and no extra
# process stays around. Set KEYBROKER_BIN to skip the search. Do not name this file
# "keybroker": it would find itself on PATH.

found=""
shim=""

consider() {
    # $1: a candidate path; the first executable one wins, pyenv shims only as a last resort
    [ -n "$found" ] && return 0
    [ -n "$1" ] && [ -f "$1" ] && [ -x "$1" ] || return 0
    case "$1" in
        */shims/keybroker) [ -n "$shim" ] || shim="$1" ;;
        *) found="$1" ;;
    esac
}

if [ -n "${KEYBROKER_BIN:-}" ]; then
    if [ -x "$KEYBROKER_BIN" ]; then
        exec "$KEYBROKER_BIN" "$@"
    fi
    echo "keybroker-helper.sh: KEYBROKER_BIN=$KEYBROKER_BIN is not executable" >&2
    exit 127
fi

consider "$(command -v keybroker 2>/dev/null || true)"
home="${HOME:-}"
if [ -n "$home" ]; then
    consider "$home/.local/bin/keybroker"                          # pip --user, pipx, uv tool
    consider "${PIPX_HOME:-$home/.local/pipx}/venvs/keybroker/bin/keybroker"
    consider "$home/.local/share/pipx/venvs/keybroker/bin/keybroker"
fi
consider "/opt/homebrew/bin/keybroker"
consider "/usr/local/bin/keybroker"
consider "/home/linuxbrew/.linuxbrew/bin/keybroker"
pyenv_root="${PYENV_ROOT:-$home/.pyenv}"
if [ -z "$found" ] && [ -d "$pyenv_root/versions" ]; then
    # the newest version's real console script, not the (slower) shim
    for candidate in "$pyenv_root"/versions/*/bin/keybroker; do
        if [ -x "$candidate" ]; then
            latest="$candidate"
        fi
    done
    consider "${latest:-}"
fi
if [ -z "$found" ] && [ -n "$home" ]; then
    for candidate in "$home"/Library/Python/*/bin/keybroker; do       # macOS pip --user
        consider "$candidate"
    done
fi
[ -n "$found" ] || found="$shim"

if [ -z "$found" ]; then
    echo "keybroker-helper.sh: cannot find keybroker (PATH, ~/.local/bin, pipx, Homebrew," \
        "/usr/local/bin, pyenv); set KEYBROKER_BIN=/path/to/keybroker" >&2
    exit 127
fi
exec "$found" "$@"
