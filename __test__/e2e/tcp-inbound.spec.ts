// Inbound TCP forwarding (-t) into a pasta namespace inside the fake host:
// a server in the namespace serves and receives files through a forwarded
// port; host clients on loopback appear as the gateway, a client in a
// "remote" namespace behind a veth appears with its real address.
import test from 'ava';
import { inFakehost, remoteNs } from '../helpers/fakehost.js';
import { httpServer } from '../helpers/http.js';

function script(mib: number, flags: string): string {
  return `
set -u
d=$(mktemp -d)
cat > $d/srv.py <<'PY'
${httpServer}
PY
head -c ${mib * 1024 * 1024} /dev/urandom > $d/f
head -c ${4 * 1024 * 1024} /dev/urandom > $d/g
echo "want $(sha256sum $d/f | cut -d' ' -f1)"
echo "wantg $(sha256sum $d/g | cut -d' ' -f1)"
${remoteNs}
timeout 170 node dist/cli/pasta.js --config-net ${flags} -t 18080:8080 -- sh -c "
  python3 $d/srv.py 8080 $d :: > $d/log 2>&1 & s=\\$!
  for i in \\$(seq 100); do python3 -c 'import socket; socket.create_connection((\\"::1\\", 8080))' 2>/dev/null && break; sleep 0.1; done
  touch $d/ready
  for i in \\$(seq 1600); do [ -e $d/done ] && break; sleep 0.1; done
  kill \\$s" &
p=$!
for i in $(seq 100); do [ -e $d/ready ] && break; sleep 0.1; done
echo "down4 $(curl -sS -m 60 http://127.0.0.1:18080/f | sha256sum | cut -d' ' -f1)"
echo "up4 $(curl -sS -m 60 -T $d/f http://127.0.0.1:18080/up)"
echo "down6 $(curl -sS -m 60 'http://[::1]:18080/f' | sha256sum | cut -d' ' -f1)"
echo "up6 $(curl -sS -m 60 -T $d/f 'http://[::1]:18080/up')"
echo "remote4 $(rx curl -sS -m 30 http://198.51.100.1:18080/g | sha256sum | cut -d' ' -f1)"
echo "remote6 $(rx curl -sS -m 30 'http://[2001:db8:1::1]:18080/g' | sha256sum | cut -d' ' -f1)"
touch $d/done
wait $p; echo "pasta=$?"
cat $d/log
kill $r; rm -rf $d`;
}

// Host-loopback clients go through the tap with --no-splice (and appear
// from the gateway), else they are spliced to the namespace's loopback
// (and appear from it); the remote ones always come through the tap.
for (const [unprivileged, spliced] of [[false, false], [true, true]] as const) {
  const mib = unprivileged ? 20 : 100;
  test(`-t: a server in the namespace serves and receives ${mib} MiB over IPv4 and IPv6, and sees real client addresses${spliced ? ', host loopback spliced' : ', --no-splice'}${unprivileged ? ' (as nobody)' : ''}`, async (t) => {
    const r = await inFakehost(['bash', '-c', script(mib, spliced ? '' : '--no-splice')], { unprivileged, timeoutMs: 200_000 });
    const out = r.stdout + r.stderr;
    const want = /want ([0-9a-f]{64})/.exec(r.stdout)?.[1];
    const wantg = /wantg ([0-9a-f]{64})/.exec(r.stdout)?.[1];
    t.truthy(want && wantg, out);
    for (const leg of ['down4', 'up4', 'down6', 'up6']) t.regex(r.stdout, new RegExp(`${leg} ${want}`), `${leg}: ${out}`);
    for (const leg of ['remote4', 'remote6']) t.regex(r.stdout, new RegExp(`${leg} ${wantg}`), `${leg}: ${out}`);
    // The remote clients appear as themselves.
    t.regex(r.stdout, /client (::ffff:)?198\.51\.100\.2$/m, out);
    t.regex(r.stdout, /client 2001:db8:1::2$/m, out);
    if (spliced) {
      t.regex(r.stdout, /client (::ffff:)?127\.0\.0\.1$/m, out);
      t.regex(r.stdout, /client ::1$/m, out);
      t.notRegex(r.stdout, /client (::ffff:)?192\.0\.2\.1$|client fd00::1$/m, out);
    } else {
      // Through the tap, host loopback clients appear as the gateway.
      t.regex(r.stdout, /client (::ffff:)?192\.0\.2\.1$/m, out);
      t.regex(r.stdout, /client fd00::1$/m, out);
      t.notRegex(r.stdout, /client (::ffff:)?127\.0\.0\.1$|client ::1$/m, 'no loopback address reaches the guest');
    }
    t.regex(r.stdout, /pasta=0/, out);
  });
}

test('-t: nothing listening in the namespace resets the host client at once', async (t) => {
  const r = await inFakehost(['bash', '-c', `
    d=$(mktemp -d)
    node dist/cli/pasta.js --config-net -t 18080 -- sh -c "touch $d/ready; for i in \\$(seq 150); do [ -e $d/done ] && break; sleep 0.1; done" &
    p=$!
    for i in $(seq 50); do [ -e $d/ready ] && break; sleep 0.1; done
    start=$(date +%s%N)
    python3 -c '
import socket
try:
    s = socket.create_connection(("127.0.0.1", 18080), timeout=10)
    print("read", len(s.recv(100)))
except ConnectionResetError:
    print("reset")
except ConnectionRefusedError:
    print("refused")'
    echo "ms=$(( ($(date +%s%N) - start) / 1000000 ))"
    touch $d/done; wait $p; rm -rf $d`]);
  // The host accepted (the port is forwarded: not "refused"), then the
  // guest's RST ended it, during the handshake's return or the first read.
  t.regex(r.stdout, /^reset$/m, r.stdout + r.stderr);
  const ms = Number(/ms=(\d+)/.exec(r.stdout)?.[1]);
  t.true(ms < 10000, `took ${ms} ms: the client waited instead of being reset`);
});

test('-t: a port already in use on the host is a startup error naming it', async (t) => {
  const r = await inFakehost(['bash', '-c', `
    python3 -c 'import socket,time; s=socket.socket(); s.bind(("0.0.0.0", 18085)); s.listen(); time.sleep(20)' & h=$!
    for i in $(seq 100); do python3 -c 'import socket; socket.create_connection(("127.0.0.1", 18085))' 2>/dev/null && break; sleep 0.05; done
    node dist/cli/pasta.js --config-net -t 18085 -- true
    echo "status=$?"
    kill $h`]);
  t.regex(r.stdout, /status=1/, r.stdout + r.stderr);
  t.regex(r.stderr, /18085/, r.stderr);
  t.regex(r.stderr, /in use/i, r.stderr);
  t.is(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
});

// Connects, says hello, prints what came back, "refused" or "reset".
const conn = `conn() { python3 -c 'import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
    s.sendall(b"hi\\\\n"); print("read", s.recv(100).decode().strip() or "nothing")
except ConnectionRefusedError:
    print("refused")
except ConnectionResetError:
    print("reset")' "$@"; }`;

for (const unprivileged of [false, true]) {
  test(`-t auto (pasta's default): ports the namespace listens on are forwarded while they listen${unprivileged ? ' (as nobody)' : ''}`, async (t) => {
    const r = await inFakehost(
      [
        'bash',
        '-c',
        `
      d=$(mktemp -d); chmod 755 $d
      head -c 4000000 /dev/urandom > $d/f
      echo "want $(sha256sum < $d/f | cut -c1-64)"
      ${conn}
      node dist/cli/pasta.js --config-net -- sh -c "
        python3 -m http.server --bind :: 18090 --directory $d > /dev/null 2>&1 & s=\\$!
        python3 -m http.server --bind 0.0.0.0 18091 --directory $d > /dev/null 2>&1 & s4=\\$!
        for i in \\$(seq 150); do [ -e $d/fetched ] && break; sleep 0.1; done
        kill \\$s \\$s4
        for i in \\$(seq 100); do [ -e $d/done ] && break; sleep 0.1; done" &
      p=$!
      for i in $(seq 100); do curl -sf -m 5 -o $d/got http://127.0.0.1:18090/f 2>/dev/null && break; sleep 0.1; done
      echo "dual4 $(sha256sum < $d/got | cut -c1-64)"
      echo "dual6 $(curl -sf -m 5 'http://[::1]:18090/f' | sha256sum | cut -c1-64)"
      # The two servers start independently: 18091 may show up one scan later.
      for i in $(seq 30); do curl -sf -m 5 -o $d/got4 http://127.0.0.1:18091/f 2>/dev/null && break; sleep 0.1; done
      echo "only4 $(sha256sum < $d/got4 | cut -c1-64)"
      echo "only4-from6 $(conn ::1 18091)"
      touch $d/fetched
      for i in $(seq 50); do [ "$(conn 127.0.0.1 18090)" = refused ] && { echo "closed after $i"; break; }; sleep 0.1; done
      touch $d/done; wait $p; echo "pasta=$?"; rm -rf $d`,
      ],
      { unprivileged, timeoutMs: 60_000 },
    );
    const out = r.stdout + r.stderr;
    const want = /want ([0-9a-f]{64})/.exec(r.stdout)?.[1];
    t.truthy(want, out);
    // A dual-stack listener is forwarded for both families, an IPv4 one for IPv4 only.
    for (const leg of ['dual4', 'dual6', 'only4']) t.regex(r.stdout, new RegExp(`${leg} ${want}`), `${leg}: ${out}`);
    t.regex(r.stdout, /only4-from6 refused/, out);
    // Once the servers stop, the host ports close (refused, not accepted and reset).
    t.regex(r.stdout, /closed after \d+/, out);
    t.regex(r.stdout, /pasta=0/, out);
  });
}

test('-t ~PORT: exclusions alone forward every other port that can be bound', async (t) => {
  const r = await inFakehost(
    [
      'bash',
      '-c',
      `
    d=$(mktemp -d)
    ${conn}
    node dist/cli/pasta.js --config-net -t ~5001 -- sh -c "
      for p in 5000 5001; do python3 -c 'import socket, sys
s = socket.create_server((\\"::\\", int(sys.argv[1])), family=socket.AF_INET6, dualstack_ipv6=True)
while True:
    c, a = s.accept(); c.recv(100); c.sendall(b\\"port %s\\\\n\\" % sys.argv[1].encode()); c.close()' \\$p & pids=\\"\\$pids \\$!\\"; done
      for i in \\$(seq 100); do [ \\$(grep -c ' 0A ' /proc/net/tcp6) -ge 2 ] && break; sleep 0.1; done
      touch $d/ready
      for i in \\$(seq 300); do [ -e $d/done ] && break; sleep 0.1; done
      kill \\$pids" 2> $d/err &
    p=$!
    for i in $(seq 300); do [ -e $d/ready ] && break; sleep 0.1; done
    echo "p5000 $(conn 127.0.0.1 5000)"
    echo "p5000-6 $(conn ::1 5000)"
    echo "p5001 $(conn 127.0.0.1 5001)"
    touch $d/done; wait $p; echo "pasta=$?"; cat $d/err >&2; rm -rf $d`,
    ],
    { timeoutMs: 90_000 },
  );
  const out = r.stdout + r.stderr;
  t.regex(r.stdout, /p5000 read port 5000/, out);
  t.regex(r.stdout, /p5000-6 read port 5000/, out);
  t.regex(r.stdout, /p5001 refused/, out);
  t.regex(r.stdout, /pasta=0/, out);
  // Where the descriptor limit cuts the list short, one line says so.
  t.true(r.stderr.trim() === '' || /^pasta: -t: \d+ of \d+ listening sockets not opened: descriptor limit$/.test(r.stderr.trim()), out);
});

test('-t %IFACE/PORT: only connections through that interface are forwarded', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `
    d=$(mktemp -d)
    ${conn}
    ${remoteNs}
    node dist/cli/pasta.js --config-net -t %lo/18086:5000 -t %r0/18087:5000 -- sh -c "
      python3 -c 'import socket
s = socket.create_server((\\"::\\", 5000), family=socket.AF_INET6, dualstack_ipv6=True)
while True:
    c, a = s.accept(); c.recv(100); c.sendall(b\\"served\\\\n\\"); c.close()' & s=\\$!
      touch $d/ready
      for i in \\$(seq 300); do [ -e $d/done ] && break; sleep 0.1; done
      kill \\$s" &
    p=$!
    for i in $(seq 300); do [ -e $d/ready ] && break; sleep 0.1; done
    for i in $(seq 50); do [ "$(conn 127.0.0.1 18086)" = "read served" ] && break; sleep 0.1; done
    echo "lo-via-lo $(conn 127.0.0.1 18086)"
    echo "lo-via-r0 $(rx bash -c "$(declare -f conn); conn 198.51.100.1 18086")"
    echo "r0-via-r0 $(rx bash -c "$(declare -f conn); conn 198.51.100.1 18087")"
    echo "r0-via-lo $(conn 127.0.0.1 18087)"
    touch $d/done; wait $p; echo "pasta=$?"; kill $r; rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  t.regex(r.stdout, /lo-via-lo read served/, out);
  t.regex(r.stdout, /lo-via-r0 refused/, out);
  t.regex(r.stdout, /r0-via-r0 read served/, out);
  t.regex(r.stdout, /r0-via-lo refused/, out);
  t.regex(r.stdout, /pasta=0/, out);
});
