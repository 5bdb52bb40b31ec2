// TCP under load, in a pasta namespace inside the fake host: many flows at
// once, a host peer that resets in the middle, and iperf3 both ways.
import test from 'ava';
import { inFakehost } from '../helpers/fakehost.js';

// Every connection carries its own deterministic 1 MiB both ways, so a
// byte delivered to the wrong flow or out of order shows.
const common = `
import asyncio, hashlib, socket, struct, sys
MIB = 1 << 20
def blob(i):
    return hashlib.shake_256(b"flow %d" % i).digest(MIB)
`;

// Host side: "data I" reads the client's blob and answers its own plus a
// verdict; "reset I" sends 256 KiB and then resets the connection.
const server = `${common}
async def handle(r, w):
    kind, i = (await r.readline()).split()
    i = int(i)
    if kind == b"reset":
        w.write(blob(i)[:MIB // 4]); await w.drain()
        await asyncio.sleep(0.3)
        w.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.transport.abort()
        return
    ok = await r.readexactly(MIB) == blob(i)
    w.write(blob(i) + (b"ok\\n" if ok else b"bad\\n")); await w.drain(); w.close()
async def main():
    s4 = await asyncio.start_server(handle, "127.0.0.1", 18100, backlog=512)
    s6 = await asyncio.start_server(handle, "::1", 18100, backlog=512)
    open(sys.argv[1], "w").close()
    await asyncio.sleep(600)
asyncio.run(main())
`;

// Namespace side: N flows over IPv4 and IPv6 through the gateway at once,
// plus one flow the server resets.
const client = `${common}
N = int(sys.argv[1])
async def one(i, host):
    r, w = await asyncio.open_connection(host, 18100)
    w.write(b"data %d\\n" % i); w.write(blob(i)); await w.drain()
    got = await r.readexactly(MIB)
    return got == blob(i) and await r.readline() == b"ok\\n"
async def reset(host):
    r, w = await asyncio.open_connection(host, 18100)
    w.write(b"reset 7\\n"); await w.drain()
    n = 0
    try:
        while (b := await r.read(65536)):
            n += len(b)
        return "eof after %d" % n
    except ConnectionResetError:
        return "reset after %d" % n
async def main():
    flows = [one(i, "192.0.2.1" if i % 2 else "fd00::1") for i in range(N)]
    res = await asyncio.wait_for(asyncio.gather(reset("192.0.2.1"), *flows, return_exceptions=True), 150)
    print("reset-flow:", res[0])
    print("intact:", sum(1 for x in res[1:] if x is True), "of", N)
    for x in res[1:]:
        if x is not True:
            print("failed:", repr(x)); break
asyncio.run(main())
`;

test('200 concurrent flows move 1 MiB each way intact; a host peer that resets mid-transfer resets only its flow', async (t) => {
  const r = await inFakehost(['bash', '-c', `
    set -u
    d=$(mktemp -d)
    cat > $d/server.py <<'PY'
${server}
PY
    cat > $d/client.py <<'PY'
${client}
PY
    python3 $d/server.py $d/ready & s=$!
    for i in $(seq 100); do [ -e $d/ready ] && break; sleep 0.1; done
    timeout 170 node dist/cli/pasta.js --config-net -- python3 $d/client.py 200
    echo "pasta=$?"
    kill $s; rm -rf $d`], { timeoutMs: 200_000 });
  const out = r.stdout + r.stderr;
  t.regex(r.stdout, /intact: 200 of 200/, out);
  // The guest saw the reset, after some of the data, not a clean end.
  t.regex(r.stdout, /reset-flow: reset after \d+/, out);
  t.regex(r.stdout, /pasta=0/, out);
});

for (const reverse of [false, true]) {
  test(`iperf3 moves 200 MB over 4 parallel streams, ${reverse ? 'host to namespace (-R)' : 'namespace to host'}, to completion`, async (t) => {
    const r = await inFakehost(['bash', '-c', `
      iperf3 -s -1 -B 127.0.0.1 -p 15201 >/dev/null 2>&1 & s=$!
      # (a probe connection would be the one client of -1: look instead)
      for i in $(seq 50); do ss -tln | grep -q 127.0.0.1:15201 && break; sleep 0.1; done
      timeout 60 node dist/cli/pasta.js --config-net -- iperf3 -c 192.0.2.1 -p 15201 -P 4 -n 200M ${reverse ? '-R' : ''} -J
      echo "pasta=$?"
      kill $s 2>/dev/null; wait $s 2>/dev/null`], { timeoutMs: 90_000 });
    const json = r.stdout.slice(r.stdout.indexOf('{'), r.stdout.lastIndexOf('}') + 1);
    let report: { end?: { sum_sent?: { bytes: number }; sum_received?: { bytes: number } }; error?: string } = {};
    try {
      report = JSON.parse(json) as typeof report;
    } catch {
      t.fail(`no iperf3 report: ${r.stdout}${r.stderr}`);
      return;
    }
    t.falsy(report.error, report.error);
    const sent = report.end?.sum_sent?.bytes ?? 0;
    const received = report.end?.sum_received?.bytes ?? -1;
    t.is(sent, 200 * 1024 * 1024, 'the sender sent all it was asked to');
    if (reverse) {
      // The namespace's client reads to the end: every byte arrives.
      t.is(received, sent, 'bytes received equal bytes sent');
    } else {
      // The host's server stops counting when the client reports the end,
      // with the last few MB still in socket buffers (iperf3's own rule).
      t.true(received >= sent * 0.9, `received ${received} of ${sent}`);
    }
    t.regex(r.stdout, /pasta=0/);
  });
}
