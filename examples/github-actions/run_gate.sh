#!/usr/bin/env bash
# The quality gate in one script: score generated samples, compare them with a baseline, render a report.
# quality-gate.yml calls it; it runs the same way on a laptop:
#
#   GATE_SAMPLES=samples/ GATE_BASELINE=quality/baseline.json \
#   GATE_RULES="--within-uncertainty --max-increase fd_fmnist=1" bash examples/github-actions/run_gate.sh
#
# Inputs (environment):
#   GATE_SAMPLES      generated samples: a folder, archive or .npy/.npz array (required)
#   GATE_REF          reference statistics id or path               (default: fashion-mnist:train)
#   GATE_BASELINE     baseline: a result JSON, a history id, or latest:NAME (optional; without it only
#                     absolute bounds such as --max fd_fmnist=40 can be checked)
#   GATE_RULES        rules for `genbench check`, e.g. "--within-uncertainty --max fd_fmnist=40"
#   GATE_SCORE_ARGS   extra options for `genbench score`           (default: --bootstrap 200)
#   GATE_OUT          output folder                                 (default: gate-out)
#   GATE_NAME         run name recorded in provenance               (default: $GITHUB_HEAD_REF, else "local")
#   GENBENCH          how to run genbench                           (default: genbench)
#   GENBENCH_HISTORY  optional SQLite results history; `genbench score` appends the result to it
#
# Outputs in $GATE_OUT: result.json (metrics + provenance), gate.md (pull-request comment),
# gate.json (verdicts for machines), report/report.html and report/summary.md.
# Exit status: that of `genbench check`: 0 all rules hold, 1 regression, 2 usage error
# (or the status of `genbench score` when scoring itself fails).
set -euo pipefail

: "${GATE_SAMPLES:?set GATE_SAMPLES to the generated samples (folder, archive or array file)}"
ref="${GATE_REF:-fashion-mnist:train}"
out="${GATE_OUT:-gate-out}"
name="${GATE_NAME:-${GITHUB_HEAD_REF:-local}}"
read -r -a genbench <<< "${GENBENCH:-genbench}"
read -r -a score_args <<< "${GATE_SCORE_ARGS:---bootstrap 200}"
read -r -a rules <<< "${GATE_RULES:-}"

# A comment for the pull request when a step fails before any verdict: the step's exit status and messages.
explain_failure() {  # $1 = step, $2 = exit status, $3 = file with its messages
    {
        echo "### ⚠️ genbench quality gate could not run: \`genbench $1\` exited with $2"
        echo
        echo '```'
        cat "$3"
        echo '```'
    } > "$out/gate.md"
}

mkdir -p "$out"
rm -f "$out/result.json" "$out/gate.md" "$out/gate.json" "$out/gate.err"  # never report a stale verdict

echo "::group::genbench score $GATE_SAMPLES" >&2
set +e
"${genbench[@]}" score "$GATE_SAMPLES" --ref "$ref" --json "$out/result.json" --overwrite --name "$name" \
    ${score_args[@]+"${score_args[@]}"} 2> "$out/gate.err"
status=$?
set -e
cat "$out/gate.err" >&2
echo "::endgroup::" >&2
if [[ "$status" -ne 0 ]]; then
    explain_failure score "$status" "$out/gate.err"
    cat "$out/gate.md"
    exit "$status"
fi

check_args=("$out/result.json" --format markdown --json "$out/gate.json")
if [[ -n "${GATE_BASELINE:-}" ]]; then
    check_args+=(--baseline "$GATE_BASELINE")
fi
set +e
"${genbench[@]}" check "${check_args[@]}" ${rules[@]+"${rules[@]}"} > "$out/gate.md" 2> "$out/gate.err"
status=$?
set -e
cat "$out/gate.err" >&2
if [[ "$status" -ne 0 && "$status" -ne 1 ]]; then
    explain_failure check "$status" "$out/gate.err"
fi

"${genbench[@]}" report "$out/result.json" -o "$out/report" --overwrite
cat "$out/gate.md"
if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
    cat "$out/gate.md" >> "$GITHUB_STEP_SUMMARY"
fi
exit "$status"
