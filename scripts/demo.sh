#!/usr/bin/env bash
# The demo of the original passt announcement, with ours: a fake host
# namespace (../shared/testnet/fakehost.sh), our passt in it, and a qemu
# guest booted through our qrap (../shared/vm/vm-run.sh), which takes its
# lease from us and pings the gateway (the host's loopback).
# Needs ../shared/vm/setup.sh to have run once (as root).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" != --inside ]; then
  exec ../shared/testnet/fakehost.sh -- "$0" --inside
fi
out=$(mktemp)
node dist/cli/passt.js -f >"$out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q "bound at" "$out" && break; sleep 0.1; done
cat "$out"
sock=$(sed -n 's/^UNIX domain socket bound at //p' "$out")
echo
echo "--- booting a guest through qrap"
QRAP="node $PWD/dist/cli/qrap.js" ../shared/vm/vm-run.sh --socket "$sock" --qrap --dhcp6 --timeout 120 -- \
  'ip addr show dev $IF' 'ip route' 'ping -c 3 192.0.2.1'
