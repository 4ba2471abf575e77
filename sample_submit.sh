#!/usr/bin/env bash
# Submit the sample job: a Monte Carlo estimate of pi split over 4 instances, each writing its
# hit count to hits.txt (uploaded to <datadir>/jobs/<job-id>/<instance>/hits.txt).
# A thin wrapper over `clusterjobs submit`; every argument is passed on to it:
#   ./sample_submit.sh --stack .stack
#   ./sample_submit.sh --webhdfs http://namenode:9870 --nodeos http://nodeos:8888
# RESEARCHER (default alice) names the protocol; INSTANCES (default 4) the split.
# ./sample_submit.sh --print-spec only prints the spec.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
researcher="${RESEARCHER:-alice}"
instances="${INSTANCES:-4}"
fail() { echo "sample_submit.sh: error: $*" >&2; exit 2; }
[[ "$researcher" =~ ^[a-z1-5.]{1,12}$ ]] || fail "RESEARCHER: not a chain account name: '$researcher'"
[[ "$instances" =~ ^[1-9][0-9]{0,3}$ ]] || fail "INSTANCES: expected 1-9999, got '$instances'"

spec() {
  cat <<JSON
{
  "version": 1,
  "researcher": "$researcher",
  "name": "sample-pi",
  "command": "awk -v seed=\"\$CLUSTERJOBS_INSTANCE\" 'BEGIN { srand(seed + 1); n = 200000; for (i = 0; i < n; i++) { x = rand(); y = rand(); if (x * x + y * y <= 1) h++ } printf \"%d %d\\\\n\", h, n }' > hits.txt",
  "resources": {"cpus": 0.5, "mem": 64, "disk": 16},
  "outputs": ["hits.txt"],
  "instances": $instances,
  "max_retries": 2,
  "timeout_seconds": 300
}
JSON
}

if [ "${1:-}" = "--print-spec" ]; then
  spec
  exit 0
fi

if [ -n "${CLUSTERJOBS:-}" ]; then
  cli=("$CLUSTERJOBS")
elif [ -x "$root/.venv/bin/clusterjobs" ]; then
  cli=("$root/.venv/bin/clusterjobs")
else
  cli=(clusterjobs)
fi

file="$(mktemp --suffix=.json)"
trap 'rm -f "$file"' EXIT
spec > "$file"
"${cli[@]}" submit "$file" "$@"
