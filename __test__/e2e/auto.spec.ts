// pasta's automatic forwards (its defaults): -T auto and -U auto give the
// namespace's loopback the host's loopback servers, -u auto forwards the
// UDP ports an existing namespace has bound when pasta joins it. pasta's
// own -t/-u listeners are never mirrored back (that would loop).
import test from 'ava';
import { inFakehost } from '../helpers/fakehost.js';

const udpEcho = (addr: string, port: number) =>
  `python3 -c 'import socket; s = socket.socket(socket.AF_INET6 if ":" in "${addr}" else socket.AF_INET, socket.SOCK_DGRAM); s.bind(("${addr}", ${port}))
while True:
    b, a = s.recvfrom(100); s.sendto(b"echo " + b, a)'`;

const udpAsk = (addr: string, port: number) =>
  `python3 -c 'import socket; s = socket.socket(socket.AF_INET6 if ":" in "${addr}" else socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); s.sendto(b"hi", ("${addr}", ${port})); print(s.recv(100).decode())'`;

test('-T auto and -U auto (the defaults): the host\'s loopback servers appear on the namespace\'s loopback; our -t port does not', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d); chmod 755 $d; echo "auto $RANDOM" > $d/x; chmod 644 $d/x; cat $d/x
    python3 -m http.server 18600 --bind 127.0.0.1 --directory $d >/dev/null 2>&1 & w=$!
    ${udpEcho('127.0.0.1', 18602)} & u=$!
    ${udpEcho('::1', 18602)} & u6=$!
    sleep 0.5
    node dist/cli/pasta.js --config-net -q --log-flows -t 18601 -- sh -c '
      echo "tcp $(curl -sS -m 5 http://127.0.0.1:18600/x)"
      echo "udp4 $(${udpAsk('127.0.0.1', 18602).replace(/'/g, `'"'"'`)})"
      echo "udp6 $(${udpAsk('::1', 18602).replace(/'/g, `'"'"'`)})"
      echo "listening $(ss -Hltn | grep -c ":1860[01] ")"
      if ss -Hltn | grep -q ":18601 "; then echo "mirrored our own -t port"; fi'
    echo "pasta=$?"; kill $w $u $u6; rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  const want = /^(auto \d+)$/m.exec(r.stdout)?.[1];
  t.truthy(want, out);
  t.regex(r.stdout, new RegExp(`^tcp ${want}$`, 'm'), out);
  t.regex(r.stdout, /^udp4 echo hi$/m, out);
  t.regex(r.stdout, /^udp6 echo hi$/m, out);
  t.regex(r.stdout, /^listening 1$/m, out);
  t.notRegex(r.stdout, /mirrored/, out);
  t.regex(r.stdout, /pasta=0/, out);
  // Spliced flows are recorded too: the UDP one ends with the engine.
  t.regex(r.stderr, /udp outbound 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:18602 .*from-guest 2 B to-guest 7 B .*stopped/, out);
  t.regex(r.stderr, /tcp outbound 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:18600 .*closed/, out);
});

test('-u auto (the default): UDP ports bound in a namespace pasta joins are forwarded from the host', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u
    unshare --user --map-root-user --net sh -c 'ip link set lo up; exec ${udpEcho('0.0.0.0', 18603).replace(/'/g, `'"'"'`)}' &
    target=$!
    sleep 0.5
    node dist/cli/pasta.js -f -q --config-net $target & pasta=$!
    for i in $(seq 50); do ss -Hlun | grep -q ":18603 " && break; sleep 0.1; done
    echo "host $(${udpAsk('127.0.0.1', 18603)})"
    kill $pasta; wait $pasta; echo "pasta exit $?"; kill $target`,
  ]);
  const out = r.stdout + r.stderr;
  t.regex(r.stdout, /^host echo hi$/m, out);
  t.regex(r.stdout, /pasta exit 0/, out);
});

test('-T auto follows the host: a server started after pasta appears in the namespace, and goes when it stops', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d); chmod 755 $d; echo "late $RANDOM" > $d/x; chmod 644 $d/x; cat $d/x
    cat > $d/ns.sh <<'NS'
touch $1/ready
for i in $(seq 60); do out=$(curl -s -m 1 http://127.0.0.1:18610/x) && [ -n "$out" ] && break; sleep 0.1; done
echo "appeared $out"
touch $1/got
for i in $(seq 60); do ss -Hltn | grep -q ":18610 " || { echo "gone"; break; }; sleep 0.1; done
NS
    node dist/cli/pasta.js --config-net -q -- sh $d/ns.sh $d & p=$!
    for i in $(seq 50); do [ -e $d/ready ] && break; sleep 0.1; done
    python3 -m http.server 18610 --bind 127.0.0.1 --directory $d >/dev/null 2>&1 & w=$!
    for i in $(seq 80); do [ -e $d/got ] && break; sleep 0.1; done
    kill $w; wait $p; echo "pasta=$?"; rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  const want = /^(late \d+)$/m.exec(r.stdout)?.[1];
  t.truthy(want, out);
  t.regex(r.stdout, new RegExp(`^appeared ${want}$`, 'm'), out);
  t.regex(r.stdout, /^gone$/m, out);
  t.regex(r.stdout, /pasta=0/, out);
});
