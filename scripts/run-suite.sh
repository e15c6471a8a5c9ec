#!/usr/bin/env bash
# The FLIP ablation suite (issue 18, docs/results.md): every suite spec into one database, then the reports.
#
#   scripts/run-suite.sh [DB] [SPEC...]     (default DB results/suite.db, default specs: all, in the order below)
#
# It resumes: jobs already done in DB are skipped and an interrupted job continues from its last resume state, so
# the suite (about 3 hours on a 2-core machine) can run in parts. Run it on a quiet machine: ablation-a's equal-time
# cells and Figure 1 measure wall-clock time, two jobs at a time with one thread each.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${1:-results/suite.db}
shift || true
SPECS=("$@")
if [ ${#SPECS[@]} -eq 0 ]; then
  SPECS=(ablation-a ablation-b ablation-c ablation-d ablation-e ablation-f scaling-model scaling-data scaling-schedule ablation-a-emoji why-steps why-equal-time)
fi
for s in "${SPECS[@]}"; do
  echo "== $s ($(date -u +%H:%M:%S) UTC)"
  npx tsx framework/cli/sweep.ts "experiments/$s.yaml" --db "$DB" --concurrency 2
done
npx tsx framework/cli/report.ts --all --db "$DB"
