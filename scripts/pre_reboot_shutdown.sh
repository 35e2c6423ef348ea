#!/usr/bin/env bash
# Before rebooting the box: status, counts, drain-stop, verify, snapshot, config backup check, checklist.
# Waits on conditions only (no fixed sleeps). Exit 0 only when everything is ready for the reboot.
# Usage: scripts/pre_reboot_shutdown.sh [--operator NAME] [--timeout S] [--drain-timeout S]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
trading="${TRADING:-$repo/.venv/bin/trading}"
if [[ ! -x "$trading" ]]; then
    echo "no trading command at $trading; run 'make install' first (or set TRADING=...)" >&2
    exit 1
fi
exec "$trading" pre-reboot "$@"
