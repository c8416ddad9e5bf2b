#!/usr/bin/env bash
# Checks the event contracts downstream teams rely on (`make lint` runs it after buf lint):
#   1. docs/asyncapi.yaml matches topics.yaml and the protos (deploy/tools/asyncapi.py --check);
#   2. it is a valid AsyncAPI document (`asyncapi validate`; warnings fail too);
#   3. no change to protos/ breaks compatibility with the previous commit
#      (deploy/tools/buf_breaking.sh; without a previous commit it says it skipped and why).
# Needs gen/python (`make protos`), Node.js and npm. The AsyncAPI CLI is installed on first use,
# at a pinned version, from the npm registry into .cache/npm; buf is built by the Makefile.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

ASYNCAPI_CLI_VERSION=6.2.0
NPM_PREFIX=$ROOT/.cache/npm
ASYNCAPI=$NPM_PREFIX/node_modules/.bin/asyncapi
BUF=$ROOT/.cache/bin/buf
PY=$ROOT/.venv/bin/python

step() { printf '\n== %s\n' "$*"; }

if [[ ! -f gen/python/.generated ]]; then
  echo "gen/python is missing: run \`make protos\` first" >&2
  exit 2
fi

step "docs/asyncapi.yaml matches topics.yaml and the protos"
"$PY" deploy/tools/asyncapi.py --check
echo "up to date"

step "asyncapi validate docs/asyncapi.yaml (@asyncapi/cli $ASYNCAPI_CLI_VERSION)"
installed=$(node -p "require('$NPM_PREFIX/node_modules/@asyncapi/cli/package.json').version" \
  2>/dev/null || true)
if [[ $installed != "$ASYNCAPI_CLI_VERSION" ]]; then
  if ! command -v npm >/dev/null; then
    echo "npm is missing: install Node.js and npm (e.g. Debian's nodejs and npm packages)" >&2
    exit 2
  fi
  # 6.2.0 declares Node >= 24; `validate` was checked to work on Node 20 as well.
  echo "installing @asyncapi/cli $ASYNCAPI_CLI_VERSION into .cache/npm (npm registry, once)"
  mkdir -p "$NPM_PREFIX"
  # npm's progress and deprecation notices go to a log, shown only when the install fails.
  if ! npm install --prefix "$NPM_PREFIX" --save-exact --no-audit --no-fund \
      --no-update-notifier --loglevel=error "@asyncapi/cli@$ASYNCAPI_CLI_VERSION" \
      >"$NPM_PREFIX/install.log" 2>&1; then
    tail -n 40 "$NPM_PREFIX/install.log" >&2
    echo "npm install failed; the whole log is $NPM_PREFIX/install.log" >&2
    exit 1
  fi
fi
# The CLI sends usage metrics unless its settings file says no: keep one of our own instead of
# writing to $HOME. Its configuration library warns about NODE_ENV=production, which it sets.
export ASYNCAPI_METRICS_CONFIG_PATH=$NPM_PREFIX/asyncapi-analytics.json
if [[ ! -f $ASYNCAPI_METRICS_CONFIG_PATH ]]; then
  echo '{"analyticsEnabled": "false", "infoMessageShown": "true", "userID": "ci"}' \
    >"$ASYNCAPI_METRICS_CONFIG_PATH"
fi
export NODE_CONFIG_ENV=development SUPPRESS_NO_CONFIG_WARNING=1
if ! "$ASYNCAPI" validate docs/asyncapi.yaml --fail-severity warn; then
  # The default output leaves out errors thrown while parsing (by a schema parser, say).
  "$ASYNCAPI" validate docs/asyncapi.yaml --fail-severity warn --diagnostics-format json || true
  exit 1
fi

step "buf breaking: protos/ against the previous commit"
if [[ ! -x $BUF ]]; then
  make --no-print-directory "$BUF"
fi
BUF=$BUF bash deploy/tools/buf_breaking.sh
