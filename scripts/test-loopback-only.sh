#!/usr/bin/env bash
# The suite inside a network namespace with only loopback and a private /tmp, under strace
# (connect calls only): prints bun's result, what the run left in /tmp, and every connect to
# an address that is not loopback (issue 14). Linux, root (unshare -n -m), strace, iproute2.
#
# Usage: bash scripts/test-loopback-only.sh   (exit code: the test run's, or 1 on leaks)
set -u
cd "$(dirname "$0")/.."
if [ "${1:-}" != "--inside" ]; then
  exec unshare -n -m --propagation private bash "$0" --inside
fi
ip link set lo up
mount -t tmpfs tmpfs /tmp
trace=$(mktemp -p /dev/shm loopback-only.XXXXXX)
tmp_before=$(ls -A /tmp | sort)
strace -f -qq -e trace=connect -o "$trace" node_modules/.bin/bun test --timeout 30000 2>&1 | grep -E '^ *[0-9]+ (pass|fail|skip)$|^Ran |^\(fail\)'
rc=${PIPESTATUS[0]}
tmp_new=$(comm -13 <(echo "$tmp_before") <(ls -A /tmp | sort))
offloop=$(grep -E 'sa_family=AF_INET6?' "$trace" | grep -vE 'inet_addr\("127\.|inet_pton\(AF_INET6, "(::1|::ffff:127\.[0-9.]+)"' || true)
echo "connect calls: $(grep -c 'connect(' "$trace"); non-loopback: $(printf '%s' "$offloop" | grep -c . || true)"
printf '%s\n' "$offloop" | head -20
echo "left in /tmp: [${tmp_new}]"
rm -f "$trace"
[ "$rc" -eq 0 ] && { [ -n "$tmp_new" ] || [ -n "$offloop" ]; } && rc=1
exit "$rc"
