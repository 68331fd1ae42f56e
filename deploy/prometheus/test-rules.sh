#!/usr/bin/env bash
# Checks the Prometheus configs and alert rules, then runs every promtool unit test in
# deploy/prometheus/tests/. Reads only files in the repo; writes nothing outside a temp dir.
# The last line is "N passed, M failed": N test files passed, M test files or checks failed.
# Exit status: 0 when nothing failed.
set -uo pipefail

if ! command -v promtool >/dev/null 2>&1; then
  echo "test-rules: promtool not found; install the Debian package 'prometheus'" \
       "(apt-get install prometheus, or: make system-deps)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

src="${BASH_SOURCE[0]}"
[[ "$src" == */* ]] || src="./$src"
here="$(cd "${src%/*}" && pwd)"
repo="$(cd "$here/../.." && pwd)"

work="$(mktemp -d "${TMPDIR:-/tmp}/ebi-promtool.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
export TMPDIR="$work" HOME="$work"

passed=0
failed=0

check() {  # check DESCRIPTION COMMAND...: a check that is not a test file
  local what="$1"; shift
  if "$@" >"$work/out" 2>&1; then
    echo "ok    $what"
  else
    echo "FAIL  $what"; sed 's/^/      /' "$work/out"
    failed=$((failed + 1))
  fi
}

for config in "$here"/prometheus*.yml; do
  check "promtool check config ${config#"$repo"/}" promtool check config "$config"
done
shopt -s nullglob
rules=("$here"/rules/*.yml)
tests=("$here"/tests/*.test.yml)
if [ ${#rules[@]} -eq 0 ]; then echo "FAIL  no rule files in $here/rules"; failed=$((failed + 1)); fi
for rule in "${rules[@]}"; do
  check "promtool check rules ${rule#"$repo"/}" promtool check rules "$rule"
done
if command -v amtool >/dev/null 2>&1; then
  check "amtool check-config deploy/alertmanager/alertmanager.yml" \
    amtool check-config "$repo/deploy/alertmanager/alertmanager.yml"
else
  echo "skip  amtool check-config (optional: Debian package prometheus-alertmanager)"
fi

if [ ${#tests[@]} -eq 0 ]; then echo "FAIL  no test files in $here/tests"; failed=$((failed + 1)); fi
for test in "${tests[@]}"; do
  if promtool test rules "$test" >"$work/out" 2>&1; then
    echo "ok    promtool test rules ${test#"$repo"/}"
    passed=$((passed + 1))
  else
    echo "FAIL  promtool test rules ${test#"$repo"/}"; sed 's/^/      /' "$work/out"
    failed=$((failed + 1))
  fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
