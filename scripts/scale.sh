#!/usr/bin/env bash
# Measures how many concurrent TCP flows one pasta instance carries: a
# client in the namespace opens N connections (default 10000) through the
# gateway to a server on the fake host's loopback, every one of them then
# exchanges a message while all are open, and the engine's descriptors and
# memory are read at that peak. A measurement, not a test: it prints
# numbers. Runs inside ../shared/testnet/fakehost.sh (nothing leaves it).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
exec ../shared/testnet/fakehost.sh -- bash -c '
set -eu
n=$1
ulimit -n $((n + 1024))
d=$(mktemp -d)
cat > $d/server.py <<PY
import asyncio, sys
async def handle(r, w):
    while (line := await r.readline()):
        w.write(b"pong " + line); await w.drain()
async def main():
    s = await asyncio.start_server(handle, "127.0.0.1", 18200, backlog=4096)
    open(sys.argv[1], "w").close()
    await asyncio.sleep(3600)
asyncio.run(main())
PY
cat > $d/client.py <<PY
import asyncio, os, sys, time
n, mark = int(sys.argv[1]), sys.argv[2]
async def main():
    t0 = time.monotonic()
    conns = []
    for i in range(0, n, 500):
        conns += await asyncio.gather(*[asyncio.open_connection("192.0.2.1", 18200) for _ in range(i, min(n, i + 500))])
    t1 = time.monotonic()
    for i, (r, w) in enumerate(conns):
        w.write(b"%d\n" % i)
    ok = 0
    for i, (r, w) in enumerate(conns):
        ok += await r.readline() == b"pong %d\n" % i
    t2 = time.monotonic()
    open(mark, "w").close()
    print(f"flows {n}: opened in {t1 - t0:.2f} s, all {ok} answered in {t2 - t1:.2f} s", flush=True)
    await asyncio.sleep(2)
asyncio.run(main())
PY
python3 $d/server.py $d/ready & s=$!
for i in $(seq 100); do [ -e $d/ready ] && break; sleep 0.1; done
node dist/cli/pasta.js --config-net -f -- python3 $d/client.py $n $d/peak & p=$!
for i in $(seq 1200); do [ -e $d/peak ] && break; sleep 0.1; done
echo "engine process $p: $(ls /proc/$p/fd | wc -l) descriptors, $(grep VmRSS /proc/$p/status | tr -s " ")"
wait $p || true
kill $s; rm -rf $d
' scale "$n"
