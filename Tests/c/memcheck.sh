#!/usr/bin/env bash
# Runs one C test executable under valgrind memcheck.
#
#   memcheck.sh [--expect-leak] VALGRIND EXECUTABLE [ARGS...]
#
# Fails on invalid reads/writes, uses of uninitialised values, bad frees and DEFINITE
# leaks. "Still reachable" and "possibly lost" blocks are not errors: the Swift runtime
# and the thread-local error message keep one-time allocations until exit (see
# valgrind.supp for the few suppressions and why each is not Pier's fault).
#
# --expect-leak inverts the check for the canary: valgrind must exit 1 and report a
# definitely lost block allocated under a pier_ call.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
expect_leak=0
if [[ ${1:-} == --expect-leak ]]; then expect_leak=1; shift; fi
valgrind=$1; shift
log=$(mktemp)
trap 'rm -f "$log"' EXIT

set +e
"$valgrind" --tool=memcheck --error-exitcode=1 --leak-check=full \
    --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    --track-origins=yes --num-callers=30 \
    --suppressions="$here/valgrind.supp" \
    "$@" 2>"$log"
status=$?
set -e
cat "$log" >&2

if (( expect_leak )); then
    if (( status == 1 )) && grep -q 'definitely lost: [1-9]' "$log" && grep -q 'pier_db_get' "$log"; then
        echo "memcheck caught the deliberate leak (exit $status)"
        exit 0
    fi
    echo "memcheck did NOT catch the deliberate leak (exit $status)" >&2
    exit 1
fi
errors=$(sed -n 's/^==[0-9]*== ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -n1)
if [[ ${errors:-0} != 0 ]]; then
    echo "memcheck: valgrind found $errors memory error(s) or definite leak(s): see its report above" >&2
elif (( status != 0 )); then
    echo "memcheck: no memory errors, but the test itself failed under valgrind (exit $status)" >&2
fi
exit $status
