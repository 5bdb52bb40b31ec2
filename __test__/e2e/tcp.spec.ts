// TCP through the engine, guest to host, in a pasta namespace inside the
// fake host: curl downloads and uploads 100 MiB from/to a server on the
// host's loopback, reached through the gateway address (mapped to
// 127.0.0.1 / ::1), over IPv4 and IPv6; sha256 must match on both ends.
import test from 'ava';
import { inFakehost } from '../helpers/fakehost.js';
import { httpServer } from '../helpers/http.js';

function script(): string {
  return `
set -u
d=$(mktemp -d)
cat > $d/srv.py <<'PY'
${httpServer}
PY
head -c ${100 * 1024 * 1024} /dev/urandom > $d/f
echo "want $(sha256sum $d/f | cut -d' ' -f1)"
python3 $d/srv.py 18080 $d 127.0.0.1 > /dev/null & s1=$!
python3 $d/srv.py 18081 $d ::1 > /dev/null & s2=$!
for i in $(seq 50); do python3 -c 'import socket; socket.create_connection(("127.0.0.1", 18080)); socket.create_connection(("::1", 18081))' 2>/dev/null && break; sleep 0.1; done
timeout 170 node dist/cli/pasta.js --config-net -- sh -c "
  echo down4 \\$(curl -sS -m 100 http://192.0.2.1:18080/f | sha256sum | cut -d' ' -f1)
  echo up4 \\$(curl -sS -m 100 -T $d/f http://192.0.2.1:18080/up)
  echo down6 \\$(curl -sS -m 100 'http://[fd00::1]:18081/f' | sha256sum | cut -d' ' -f1)
  echo up6 \\$(curl -sS -m 100 -T $d/f 'http://[fd00::1]:18081/up')
"
echo "pasta=$?"
kill $s1 $s2; rm -rf $d`;
}

for (const unprivileged of [false, true]) {
  test(`curl moves 100 MiB each way over IPv4 and IPv6, intact${unprivileged ? ' (as nobody)' : ''}`, async (t) => {
    const r = await inFakehost(['bash', '-c', script()], { unprivileged, timeoutMs: 200_000 });
    const want = /want ([0-9a-f]{64})/.exec(r.stdout)?.[1];
    t.truthy(want, r.stdout + r.stderr);
    for (const leg of ['down4', 'up4', 'down6', 'up6']) {
      t.regex(r.stdout, new RegExp(`${leg} ${want}`), `${leg}: ${r.stdout}${r.stderr}`);
    }
    t.regex(r.stdout, /pasta=0/);
  });
}

test('a refused connection is a RST: curl fails at once with "connection refused"', async (t) => {
  const r = await inFakehost(['bash', '-c', `
    start=$(date +%s%N)
    node dist/cli/pasta.js --config-net -- curl -sS -m 10 http://192.0.2.1:1/ 2>&1
    echo "ms=$(( ($(date +%s%N) - start) / 1000000 ))"`]);
  t.regex(r.stdout, /Connection refused|Couldn't connect/i, r.stdout + r.stderr);
  const ms = Number(/ms=(\d+)/.exec(r.stdout)?.[1]);
  t.true(ms < 8000, `took ${ms} ms: a timeout, not a refusal`);
});

test('half-close: the client shuts down its write side first and still gets the whole reply', async (t) => {
  const r = await inFakehost(['bash', '-c', `
    socat TCP-LISTEN:18090,bind=127.0.0.1,reuseaddr SYSTEM:'cat; head -c 3000000 /dev/zero | tr "\\\\0" x' &
    srv=$!
    sleep 0.3
    node dist/cli/pasta.js --config-net -- sh -c 'echo request | socat -t 5 - TCP:192.0.2.1:18090 | wc -c'
    kill $srv 2>/dev/null`]);
  // "request\\n" echoed back, then 3,000,000 bytes sent after the client's FIN.
  t.regex(r.stdout, /^3000008$/m, r.stdout + r.stderr);
});

test('--map-host-loopback: the given addresses, not the gateway, stand for the host loopback', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `
    d=$(mktemp -d); echo "hello $RANDOM" > $d/x; cat $d/x
    python3 -m http.server 18098 --bind 127.0.0.1 --directory $d >/dev/null 2>&1 & w4=$!
    python3 -m http.server 18099 --bind ::1 --directory $d >/dev/null 2>&1 & w6=$!
    for i in $(seq 50); do python3 -c 'import socket; socket.create_connection(("127.0.0.1", 18098)); socket.create_connection(("::1", 18099))' 2>/dev/null && break; sleep 0.1; done
    node dist/cli/pasta.js --config-net --map-host-loopback 192.0.2.99 --map-host-loopback fd00::99 -- sh -c '
      echo "v4 $(curl -sS -m 5 http://192.0.2.99:18098/x)"
      echo "v6 $(curl -sS -m 5 http://[fd00::99]:18099/x)"'
    kill $w4 $w6; rm -rf $d`,
  ]);
  const hello = /^(hello \d+)$/m.exec(r.stdout)?.[1];
  t.truthy(hello, r.stdout + r.stderr);
  t.regex(r.stdout, new RegExp(`^v4 ${hello}$`, 'm'), r.stdout + r.stderr);
  t.regex(r.stdout, new RegExp(`^v6 ${hello}$`, 'm'), r.stdout + r.stderr);
});
