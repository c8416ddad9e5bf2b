#!/usr/bin/env bash
# Installs the Debian packages the tests drive as real programs, when they are missing:
# chromium (the dashboard browser test), prometheus (its promtool lints /metrics) and kcat
# (reads the topics as a real Kafka client: tests/clients, docs/real-clients.md).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
apt-get update -qq
# With recommended packages: chromium needs their fonts to render Vietnamese text.
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
