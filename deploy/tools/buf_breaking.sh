#!/usr/bin/env bash
# `buf breaking` of protos/ against the previous commit (HEAD~1), under the FILE rules of
# protos/buf.yaml, in the git work tree it is run from (validate_contracts.sh runs it from the
# repository root; the tests, from throwaway repositories). BUF names the buf binary.
# Without a previous commit (the first commit, a shallow clone, no git at all) it says that the
# check was skipped and why, and exits 0: there is nothing to compare with.
set -euo pipefail
BUF=${BUF:?set BUF to the buf binary (make lint builds .cache/bin/buf)}

if ! git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "SKIPPED buf breaking: not a git work tree, so there is no previous commit" >&2
  exit 0
fi
if ! previous=$(git rev-parse --verify --quiet 'HEAD~1^{commit}'); then
  if [[ $(git rev-parse --is-shallow-repository) == true ]]; then
    echo "SKIPPED buf breaking: this shallow clone lacks HEAD's parent commit;" \
      "\`git fetch --deepen=1\` fetches it" >&2
  else
    echo "SKIPPED buf breaking: HEAD is the first commit, there is no previous one" >&2
  fi
  exit 0
fi
against=$(git log -1 --format='%h (%s)' "$previous")
if ! "$BUF" breaking protos --against ".git#ref=$previous,subdir=protos"; then
  echo "protos/ breaks compatibility with $against: add fields under new numbers and reserve" \
    "removed ones, or publish the change as a new package version (v2)." >&2
  exit 1
fi
echo "no breaking change against $against"
