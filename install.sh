#!/bin/sh
# Install keybroker from this checkout for the current user (no root, PEP 668-safe), then
# print a key from the built-in demo profile. What it does: scripts/install.py; README.md.
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
for py in python3 python; do
  if command -v "$py" >/dev/null 2>&1; then exec "$py" "$here/scripts/install.py" "$@"; fi
done
echo "install: error: python3 is needed to run the installer" >&2
exit 1
