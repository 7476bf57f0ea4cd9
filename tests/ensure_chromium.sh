#!/bin/sh
# Makes sure a Chromium is available for the browser tests (used by `make test`).
# Order: $CHROMIUM if set, else `chromium` on PATH; if neither and we are root on a
# Debian-like system, install Debian's chromium; otherwise say exactly what to install.
set -eu

if [ -n "${CHROMIUM:-}" ]; then
  if [ -x "$CHROMIUM" ]; then echo "chromium: using \$CHROMIUM=$CHROMIUM"; exit 0; fi
  echo "chromium: \$CHROMIUM=$CHROMIUM is not an executable file" >&2; exit 1
fi
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null 2>&1; then echo "chromium: using $(command -v "$name")"; exit 0; fi
done

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium: not found; installing Debian's chromium with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
  command -v chromium >/dev/null 2>&1 && { echo "chromium: installed $(command -v chromium)"; exit 0; }
fi

msg="chromium: not found. Install it (Debian/Ubuntu: 'sudo apt-get install chromium'), or set CHROMIUM=/path/to/chromium."
if [ "${CI:-}" = "true" ]; then
  echo "$msg" >&2; exit 1
fi
echo "$msg The browser tests will be skipped." >&2
