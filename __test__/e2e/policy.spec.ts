// Policy hooks end to end: pasta with --policy (the examples/ policies and
// small ones written here) in the fake host, against real clients and
// servers: refusals, a redirect, an inbound port mapping, flow records
// whose bytes match what moved, a slow hook that parks one flow while
// others keep going, a throwing hook, and many short flows. Decisions
// get 5 s (--policy-timeout) where the test depends on the hook's
// answer: a loaded CI machine must not turn a decision into the default.
import test from 'ava';
import { file, inFakehost, remoteNs, waitPort } from '../helpers/fakehost.js';
import { httpServer } from '../helpers/http.js';

for (const unprivileged of [false, true]) {
test(`allow-list: a denied TCP port is refused at once, a denied UDP port gets ICMP, an allowed port works${unprivileged ? ' (as nobody)' : ''}`, async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d); echo "hello $RANDOM" > $d/x; cat $d/x
    ${file('srv.py', httpServer)}
    python3 $d/srv.py 18080 $d 127.0.0.1 >/dev/null & s1=$!
    python3 $d/srv.py 18081 $d 127.0.0.1 >/dev/null & s2=$!
    ${waitPort('127.0.0.1', 18080)}; ${waitPort('127.0.0.1', 18081)}
    ${file('udp.py', `import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3)
s.connect(("192.0.2.1", 18082)); t0 = time.time()
try:
    s.send(b"x"); s.recv(10); print("udp answered")
except OSError as e:
    print("udp errno", e.errno, "ms", int((time.time() - t0) * 1000))`)}
    PASST_ALLOW_PORTS=18080 node dist/cli/pasta.js --config-net -q --policy examples/allow-list.mjs --policy-timeout 5000 -- sh -c "
      echo allowed \\$(curl -sS -m 5 http://192.0.2.1:18080/x)
      start=\\$(date +%s%N)
      curl -sS -m 10 http://192.0.2.1:18081/x 2>&1
      echo denied-ms \\$(( (\\$(date +%s%N) - start) / 1000000 ))
      python3 $d/udp.py"
    echo "pasta=$?"; kill $s1 $s2; rm -rf $d`,
  ], { unprivileged });
  const out = r.stdout + r.stderr;
  const hello = /^(hello \d+)$/m.exec(r.stdout)?.[1];
  t.truthy(hello, out);
  t.regex(r.stdout, new RegExp(`^allowed ${hello}$`, 'm'), out);
  t.regex(r.stdout, /Connection refused|Couldn't connect/i, out);
  const ms = Number(/denied-ms (\d+)/.exec(r.stdout)?.[1]);
  t.true(ms < 3000, `the refusal took ${ms} ms: ${out}`);
  // ICMP administratively prohibited: EHOSTUNREACH (113), not a timeout.
  t.regex(r.stdout, /udp errno 113 ms \d+/, out);
  t.regex(r.stdout, /pasta=0/, out);
});
}

test('redirect: the guest\'s 10.0.0.1:5432 reaches the host\'s 127.0.0.1:15432', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d); echo "db $RANDOM" > $d/x; cat $d/x
    python3 -m http.server 15432 --bind 127.0.0.1 --directory $d >/dev/null 2>&1 & s=$!
    ${waitPort('127.0.0.1', 15432)}
    node dist/cli/pasta.js --config-net -q --policy examples/redirect.mjs --policy-timeout 5000 -- sh -c '
      echo "got $(curl -sS -m 5 http://10.0.0.1:5432/x)"'
    kill $s; rm -rf $d`,
  ]);
  const want = /^(db \d+)$/m.exec(r.stdout)?.[1];
  t.truthy(want, r.stdout + r.stderr);
  t.regex(r.stdout, new RegExp(`^got ${want}$`, 'm'), r.stdout + r.stderr);
});

test('inbound: a hook maps host port 18088 to guest port 80; the server sees the real client', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d); chmod 755 $d; echo "web $RANDOM" > $d/x; chmod 644 $d/x; cat $d/x
    ${remoteNs}
    ${file('srv.py', httpServer)}
    ${file('map.mjs', `export default {
  inbound(flow) {
    return flow.proto === 'tcp' && flow.dst.port === 18088 ? { dst: { port: 80 } } : 'allow';
  },
};`)}
    ${file('ns.sh', `python3 $1/srv.py 80 $1 0.0.0.0 & s=$!
sleep 8; kill $s`)}
    node dist/cli/pasta.js --config-net -q -t 18088 --policy $d/map.mjs --policy-timeout 5000 -- sh $d/ns.sh $d > $d/ns.log 2>&1 & p=$!
    for i in $(seq 60); do rx curl -s -m 1 http://198.51.100.1:18088/x >/dev/null 2>&1 && break; sleep 0.2; done
    echo "remote $(rx curl -sS -m 5 http://198.51.100.1:18088/x)"
    wait $p; cat $d/ns.log; kill $r; rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  const want = /^(web \d+)$/m.exec(r.stdout)?.[1];
  t.truthy(want, out);
  t.regex(r.stdout, new RegExp(`^remote ${want}$`, 'm'), out);
  t.regex(r.stdout, /^client 198\.51\.100\.2$/m, out);
});

test('flow records: bytes each way are what moved (100 MiB up, 10 MiB down), JSON lines and --log-flows', async (t) => {
  const r = await inFakehost(
    [
      'bash',
      '-c',
      `set -u; d=$(mktemp -d)
    ${file('srv.py', `import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 18100)); l.listen(1)
c, _ = l.accept(); n = 0
while True:
    b = c.recv(1 << 20)
    if not b: break
    n += len(b)
print("server got", n, flush=True)
c.sendall(b"y" * (10 << 20)); c.close()`)}
    ${file('cli.py', `import socket
s = socket.create_connection(("192.0.2.1", 18100))
s.sendall(b"x" * (100 << 20)); s.shutdown(socket.SHUT_WR); n = 0
while True:
    b = s.recv(1 << 20)
    if not b: break
    n += len(b)
print("client got", n)`)}
    python3 $d/srv.py & s=$!
    for i in $(seq 50); do ss -ltn | grep -q ':18100 ' && break; sleep 0.1; done
    PASST_FLOW_LOG=$d/flows.jsonl node dist/cli/pasta.js --config-net --log-flows --policy examples/flow-log.mjs -- python3 $d/cli.py 2> $d/err
    echo "pasta=$?"; wait $s
    echo "--- jsonl"; cat $d/flows.jsonl; echo "--- err"; cat $d/err; rm -rf $d`,
    ],
    { timeoutMs: 120_000 },
  );
  const out = r.stdout + r.stderr;
  t.regex(r.stdout, /server got 104857600/, out);
  t.regex(r.stdout, /client got 10485760/, out);
  const records = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown> & { dst: { port: number } });
  const rec = records.find((x) => x.dst.port === 18100);
  t.truthy(rec, out);
  t.is(rec!.proto, 'tcp');
  t.is(rec!.direction, 'outbound');
  t.is(rec!.bytesFromGuest, 100 << 20);
  t.is(rec!.bytesToGuest, 10 << 20);
  t.is(rec!.end, 'closed');
  t.deepEqual((rec!.mapped as { dst: unknown }).dst, { addr: '127.0.0.1', port: 18100 });
  // --log-flows: a line for the same flow on the log.
  t.regex(r.stdout, /tcp outbound \S+ -> 192\.0\.2\.1:18100.*104857600.*10485760.*closed/, out);
});

// Serial: a latency bound, so not beside this file's heavier tests (the
// 10,000 flows) on a 2-core machine.
test.serial('a hook that takes 5 s parks only its flow: an open flow keeps answering (p99 < 5 ms), then the answer applies', async (t) => {
  const r = await inFakehost(
    [
      'bash',
      '-c',
      `set -u; d=$(mktemp -d)
    ${file('slow.mjs', `export default {
  async outbound(flow) {
    if (flow.dst.port === 18201) {
      await new Promise((r) => setTimeout(r, 5000));
      return 'reject';
    }
    return 'allow';
  },
};`)}
    ${file('echo.py', `import socket, threading
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 18200)); l.listen(8)
def serve(c):
    while True:
        b = c.recv(64)
        if not b: return
        c.sendall(b)
while True:
    c, _ = l.accept(); c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    threading.Thread(target=serve, args=(c,), daemon=True).start()`)}
    ${file('rr.py', `import socket, threading, time
a = socket.create_connection(("192.0.2.1", 18200)); a.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
parked = {}
def connect():
    t0 = time.time()
    try:
        socket.create_connection(("192.0.2.1", 18201), timeout=20); parked["how"] = "connected"
    except OSError as e:
        parked["how"] = "errno %d" % e.errno
    parked["ms"] = int((time.time() - t0) * 1000)
th = threading.Thread(target=connect); th.start()
time.sleep(0.2)
lat = []
end = time.time() + 4
while time.time() < end:
    t0 = time.perf_counter(); a.sendall(b"p"); a.recv(64); lat.append(time.perf_counter() - t0)
lat.sort()
print("rr n", len(lat), "p99_us", int(lat[int(len(lat) * 0.99)] * 1e6), "parked_during", "how" not in parked)
th.join(); print("parked", parked["how"], "ms", parked["ms"])`)}
    python3 $d/echo.py & s=$!
    ${waitPort('127.0.0.1', 18200)}
    node dist/cli/pasta.js --config-net -q --policy $d/slow.mjs --policy-timeout 10000 -- python3 $d/rr.py
    echo "pasta=$?"; kill $s; rm -rf $d`,
    ],
    { timeoutMs: 90_000 },
  );
  const out = r.stdout + r.stderr;
  const m = /rr n (\d+) p99_us (\d+) parked_during True/.exec(r.stdout);
  t.truthy(m, out);
  t.true(Number(m![1]) > 100, `only ${m![1]} transactions: ${out}`);
  t.true(Number(m![2]) < 5000, `p99 ${m![2]} us: ${out}`);
  const p = /parked errno 111 ms (\d+)/.exec(r.stdout);
  t.truthy(p, `the parked flow was not refused after the answer: ${out}`);
  t.true(Number(p![1]) >= 4500, `refused after ${p![1]} ms, before the hook answered: ${out}`);
});

test.serial('a hook awaiting something slow does not keep a core busy meanwhile', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d)
    ${file('slow.mjs', `export default {
  async outbound(flow) {
    await new Promise((r) => setTimeout(r, 3000));
    return 'allow';
  },
};`)}
    python3 -c '
import socket
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("127.0.0.1", 18210)); l.listen(4)
while True:
    l.accept()' & s=$!
    ${waitPort('127.0.0.1', 18210)}
    TIMEFORMAT='pasta wall %R cpu %U %S'
    time node dist/cli/pasta.js --config-net -q --policy $d/slow.mjs --policy-timeout 10000 -- python3 -c 'import socket; socket.create_connection(("192.0.2.1", 18210), timeout=8); print("connected")'
    kill $s 2>/dev/null; rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  t.regex(r.stdout, /^connected$/m, out);
  const m = /pasta wall ([\d.]+) cpu ([\d.]+) ([\d.]+)/.exec(r.stderr);
  t.truthy(m, out);
  t.true(Number(m![1]) >= 3, `answered before the hook did: ${out}`);
  // Node's start and the module load are a fraction of a second; a
  // worker polling its queue while the promise waits took the whole 3 s.
  t.true(Number(m![2]) + Number(m![3]) < 1.5, `CPU while the hook waited: ${out}`);
});

test('a hook that throws: the flow gets the default (allow), a warning, and a counter', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d); echo "ok $RANDOM" > $d/x; cat $d/x
    python3 -m http.server 18301 --bind 127.0.0.1 --directory $d >/dev/null 2>&1 & s=$!
    ${waitPort('127.0.0.1', 18301)}
    ${file('throw.mjs', `export default {
  outbound(flow) {
    if (flow.dst.port === 18301) throw new Error('hook exploded');
    return 'allow';
  },
};`)}
    node dist/cli/pasta.js --config-net --stats --policy $d/throw.mjs --policy-timeout 5000 -- sh -c '
      echo "got $(curl -sS -m 5 http://192.0.2.1:18301/x)"'
    echo "pasta=$?"
    node dist/cli/pasta.js --config-net -q --policy $d/throw.mjs --policy-timeout 5000 --policy-default reject -- sh -c '
      curl -sS -m 5 http://192.0.2.1:18301/x > /dev/null 2>&1; echo "closed rc=$?"'
    kill $s; rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  const want = /^(ok \d+)$/m.exec(r.stdout)?.[1];
  t.truthy(want, out);
  t.regex(r.stdout, new RegExp(`^got ${want}$`, 'm'), out);
  t.regex(r.stderr, /outbound hook failed.*hook exploded/, out);
  t.regex(r.stderr, /policy asked \d+, .*errors 1\b/, out);
  t.regex(r.stdout, /pasta=0/, out);
  // --policy-default reject: the same failure closes the flow instead.
  t.regex(r.stdout, /^closed rc=7$/m, out);
  t.regex(r.stderr, /outbound hook failed.*hook exploded; rejected/, out);
});

test('10,000 short flows with a no-op hook: none lost', async (t) => {
  const r = await inFakehost(
    [
      'bash',
      '-c',
      `set -u; d=$(mktemp -d)
    ${file('srv.py', `import socketserver
class H(socketserver.BaseRequestHandler):
    def handle(self):
        b = self.request.recv(16)
        self.request.sendall(b"ok" + b)
class S(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    request_queue_size = 512
    daemon_threads = True
S(("127.0.0.1", 18400), H).serve_forever()`)}
    ${file('many.py', `import socket, threading
ok = [0] * 4; bad = [0] * 4
def run(k):
    for i in range(2500):
        try:
            s = socket.create_connection(("192.0.2.1", 18400), timeout=10)
            s.sendall(b"%d" % i); got = b""
            while True:
                b = s.recv(16)
                if not b: break
                got += b
            s.close()
            if got == b"ok%d" % i: ok[k] += 1
            else: bad[k] += 1
        except OSError:
            bad[k] += 1
ts = [threading.Thread(target=run, args=(k,)) for k in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print("ok", sum(ok), "bad", sum(bad))`)}
    python3 $d/srv.py & s=$!
    ${waitPort('127.0.0.1', 18400)}
    node dist/cli/pasta.js --config-net -q --policy examples/noop.mjs -- python3 $d/many.py
    echo "pasta=$?"; kill $s; rm -rf $d`,
    ],
    { timeoutMs: 110_000 },
  );
  t.regex(r.stdout, /^ok 10000 bad 0$/m, r.stdout + r.stderr);
});

test('pasta\'s loopback paths and -u ask the hooks too: -t and -u mapped by port, -T refused', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d); chmod 755 $d; echo "lo $RANDOM" > $d/x; chmod 644 $d/x; cat $d/x
    ${remoteNs}
    ${file('srv.py', httpServer)}
    ${file('map.mjs', `export default {
  inbound(flow) {
    if (flow.dst.port === 18090) return { dst: { port: 8090 } };
    if (flow.dst.port === 18091) return { dst: { port: 8091 } };
    return 'allow';
  },
  outbound(flow) {
    return flow.dst.port === 15301 || flow.dst.port === 15302 ? 'reject' : 'allow';
  },
};`)}
    ${file('echo.py', `import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 8091))
while True:
    b, a = s.recvfrom(100); print("udp client", a[0], flush=True); s.sendto(b"echo " + b, a)`)}
    ${file('hecho.py', `import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    b, a = s.recvfrom(100); s.sendto(b"echo " + b, a)`)}
    ${file('ns.sh', `python3 $1/srv.py 8090 $1 0.0.0.0 > $1/ns-http.log 2>&1 & h=$!
python3 $1/echo.py > $1/ns-udp.log 2>&1 & u=$!
sleep 1
echo "T-allowed $(curl -sS -m 5 http://127.0.0.1:15300/x 2>&1)"
curl -sS -m 5 http://127.0.0.1:15301/x > /dev/null 2>&1; echo "T-denied rc=$?"
for p in 15303 15302; do python3 -c 'import socket, sys; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); s.sendto(b"hi", ("127.0.0.1", int(sys.argv[1])))
try:
    print("U", sys.argv[1], s.recv(100).decode())
except OSError as e:
    print("U", sys.argv[1], "no answer")' $p; done
sleep 5; kill $h $u`)}
    python3 -m http.server 15300 --bind 127.0.0.1 --directory $d >/dev/null 2>&1 & w0=$!
    python3 -m http.server 15301 --bind 127.0.0.1 --directory $d >/dev/null 2>&1 & w1=$!
    python3 $d/hecho.py 15302 >/dev/null 2>&1 & e2=$!
    python3 $d/hecho.py 15303 >/dev/null 2>&1 & e3=$!
    node dist/cli/pasta.js --config-net -q --log-flows -t 18090 -u 18091 -T 15300,15301 -U 15302,15303 --policy $d/map.mjs --policy-timeout 5000 -- sh $d/ns.sh $d > $d/ns.log 2>&1 & p=$!
    for i in $(seq 60); do curl -s -m 1 http://127.0.0.1:18090/x >/dev/null 2>&1 && break; sleep 0.2; done
    echo "t-loopback $(curl -sS -m 5 http://127.0.0.1:18090/x)"
    echo "u-remote $(rx python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); s.sendto(b"hi", ("198.51.100.1", 18091)); print(s.recv(100).decode())')"
    echo "u-loopback $(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); s.sendto(b"lo", ("127.0.0.1", 18091)); print(s.recv(100).decode())')"
    wait $p; cat $d/ns.log $d/ns-udp.log; kill $r $w0 $w1 $e2 $e3; rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  const want = /^(lo \d+)$/m.exec(r.stdout)?.[1];
  t.truthy(want, out);
  t.regex(r.stdout, new RegExp(`^t-loopback ${want}$`, 'm'), out);
  t.regex(r.stdout, /^u-remote echo hi$/m, out);
  t.regex(r.stdout, /^udp client 198\.51\.100\.2$/m, out);
  t.regex(r.stdout, new RegExp(`^T-allowed ${want}$`, 'm'), out);
  t.regex(r.stdout, /^T-denied rc=(5[26]|7)$/m, out);
  // Spliced UDP asks too: -U allowed and refused, a host-loopback -u
  // client mapped by port (8091 answers for 18091).
  t.regex(r.stdout, /^U 15303 echo hi$/m, out);
  t.regex(r.stdout, /^U 15302 no answer$/m, out);
  t.regex(r.stdout, /^u-loopback echo lo$/m, out);
  // Spliced flows have flow records too (--log-flows).
  t.regex(r.stdout, /tcp inbound 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:18090 .*closed/, out);
  t.regex(r.stdout, /tcp outbound 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:15300 .*closed/, out);
  t.regex(r.stdout, /tcp outbound 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:15301 .*rejected/, out);
});

test('outbound: a hook chooses the source address the host sees, and refuses a ping with ICMP', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d); echo "src $RANDOM" > $d/x; cat $d/x
    ${file('srv.py', httpServer)}
    ${file('src.mjs', `export default {
  outbound(flow) {
    if (flow.proto === 'icmp') return 'reject';
    if (flow.dst.port === 18120) return { src: { addr: '127.0.0.2' } };
    return 'allow';
  },
};`)}
    python3 $d/srv.py 18120 $d 127.0.0.1 & s=$!
    ${waitPort('127.0.0.1', 18120)}
    node dist/cli/pasta.js --config-net -q --log-flows --policy $d/src.mjs --policy-timeout 5000 -- sh -c '
      echo "got $(curl -sS -m 5 http://192.0.2.1:18120/x)"
      ping -c 1 -W 2 192.0.2.1; echo "ping=$?"'
    kill $s; rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  const want = /^(src \d+)$/m.exec(r.stdout)?.[1];
  t.truthy(want, out);
  t.regex(r.stdout, new RegExp(`^got ${want}$`, 'm'), out);
  t.regex(r.stdout, /^client 127\.0\.0\.2$/m, out);
  t.regex(r.stdout, /filtered|prohibited/i, out);
  t.regex(r.stdout, /ping=1/, out);
  t.regex(r.stderr, /^icmp outbound 192\.0\.2\.2:(\d+) -> 192\.0\.2\.1:\1 .* rejected$/m, out);
});

test('outbound: a hook redirects a ping to the host loopback, from the address it chooses', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d)
    ${file('p.mjs', `export default {
  outbound(flow) {
    if (flow.proto === 'icmp' && flow.dst.addr === '10.0.0.1') return { dst: { addr: '127.0.0.1' }, src: { addr: '127.0.0.2' } };
    return 'allow';
  },
};`)}
    node dist/cli/pasta.js --config-net -q --log-flows --policy $d/p.mjs --policy-timeout 5000 -- ping -c 2 -i 0.2 -W 2 10.0.0.1
    echo "pasta=$?"; rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  // Nothing answers 10.0.0.1 in the fake host: the replies are the host
  // loopback's, shown as from where the guest sent.
  t.regex(r.stdout, /64 bytes from 10\.0\.0\.1: icmp_seq=1/, out);
  t.regex(r.stdout, /2 received/, out);
  t.regex(r.stdout, /pasta=0/, out);
  t.regex(r.stderr, /^icmp outbound 192\.0\.2\.2:(\d+) -> 10\.0\.0\.1:\1 \(mapped 127\.0\.0\.2:\d+ -> 127\.0\.0\.1:\d+\) from-guest 112 B to-guest 112 B/m, out);
});

// One echo identifier to several destinations (as fping does): each
// destination is its own flow, asked about and answered on its own.
const pingIds = `import socket, struct, sys, time
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(0.3)
def echo(dst, seq):
    body = struct.pack('!HH', 4242, seq) + b'x' * 16
    s.sendto(struct.pack('!BBH', 8, 0, csum(b'\\x08\\x00\\x00\\x00' + body)) + body, (dst, 0))
    deadline = time.time() + 2
    while time.time() < deadline:
        try:
            pkt, (src, _) = s.recvfrom(2000)
        except socket.timeout:
            continue
        ihl = (pkt[0] & 15) * 4
        kind = pkt[ihl]
        if kind == 0 and struct.unpack('!HH', pkt[ihl + 4:ihl + 8]) == (4242, seq):
            return 'reply from ' + src
        if kind == 3:
            return 'unreachable from ' + src
    return 'nothing'
for seq, dst in enumerate(sys.argv[1:], 1):
    print(dst, echo(dst, seq))
# Both allowed destinations at once: each reply reaches its own flow.
sent = {}
for seq, dst in ((10, sys.argv[1]), (11, sys.argv[3])):
    body = struct.pack('!HH', 4242, seq) + b'y' * 16
    s.sendto(struct.pack('!BBH', 8, 0, csum(b'\\x08\\x00\\x00\\x00' + body)) + body, (dst, 0))
deadline = time.time() + 2
while len(sent) < 2 and time.time() < deadline:
    try:
        pkt, (src, _) = s.recvfrom(2000)
    except socket.timeout:
        continue
    ihl = (pkt[0] & 15) * 4
    ident, seq = struct.unpack('!HH', pkt[ihl + 4:ihl + 8])
    if pkt[ihl] == 0 and ident == 4242 and seq in (10, 11):
        sent[seq] = src
print('together', sent.get(10), sent.get(11))
`;

test('ping: one identifier to several destinations, each decided and answered on its own', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d)
    ${file('ids.py', pingIds)}
    ${file('p.mjs', `export default {
  outbound(flow) {
    if (flow.proto !== 'icmp') return 'allow';
    if (flow.dst.addr === '10.0.0.2') return 'reject';
    return { dst: { addr: '127.0.0.1' } };
  },
};`)}
    node dist/cli/pasta.js --config-net -q --log-flows --policy $d/p.mjs --policy-timeout 5000 -- python3 $d/ids.py 10.0.0.1 10.0.0.2 10.0.0.3
    echo "pasta=$?"; rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  t.regex(r.stdout, /^10\.0\.0\.1 reply from 10\.0\.0\.1$/m, out);
  // Refused although the identifier had a flow already.
  t.regex(r.stdout, /^10\.0\.0\.2 unreachable from /m, out);
  // Redirected by its own decision, and answered as from where it went.
  t.regex(r.stdout, /^10\.0\.0\.3 reply from 10\.0\.0\.3$/m, out);
  t.regex(r.stdout, /^together 10\.0\.0\.1 10\.0\.0\.3$/m, out);
  t.regex(r.stdout, /pasta=0/, out);
  t.regex(r.stderr, /^icmp outbound 192\.0\.2\.2:4242 -> 10\.0\.0\.1:4242 .* from-guest 32 B to-guest 32 B/m, out);
  t.regex(r.stderr, /^icmp outbound 192\.0\.2\.2:4242 -> 10\.0\.0\.2:4242 .* rejected$/m, out);
  t.regex(r.stderr, /^icmp outbound 192\.0\.2\.2:4242 -> 10\.0\.0\.3:4242 \(mapped 0\.0\.0\.0:(?!4242)\d+ -> 127\.0\.0\.1:\d+\) from-guest 32 B to-guest 32 B/m, out);
});

test('ping: an echo flow has a record, its echo data counted each way', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `node dist/cli/pasta.js --config-net -q --log-flows -- sh -c 'ping -c 3 -i 0.2 -s 100 192.0.2.1 | tail -2'`,
  ]);
  const out = r.stdout + r.stderr;
  t.regex(r.stdout, /3 received/, out);
  t.regex(
    r.stderr,
    /^icmp outbound 192\.0\.2\.2:(\d+) -> 192\.0\.2\.1:\1 \(mapped 0\.0\.0\.0:\d+ -> 127\.0\.0\.1:\d+\) from-guest 300 B to-guest 300 B \d+ ms stopped$/m,
    out,
  );
});
