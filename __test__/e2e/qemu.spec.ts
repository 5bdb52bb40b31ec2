// passt end to end with a real qemu guest (../shared/vm/vm-run.sh), inside
// the fake host: our passt listens, the guest boots, takes its DHCPv4
// lease, SLAAC address and DHCPv6 reply from us, and pings the gateway
// (the host's loopback through the gateway mapping). Once directly on the
// socket (-netdev stream), once through our qrap (-net socket,fd=5). The
// first guest also moves TCP both ways through our stack: downloads over
// IPv4 and IPv6, uploads, a server in the guest reached through -t, and
// connections left open when the guest vanishes (qemu killed).
import test from 'ava';
import { inFakehost } from '../helpers/fakehost.js';
import { dnsServer } from '../helpers/dns.js';

// Host side: a 4 MB file $dir/f served over HTTP on 127.0.0.1:18080, our
// passt ($pid) on the socket $sock. The guest's commands are "$@".
const start = (passtArgs: string) => `
set -u
dir=$(mktemp -d)
head -c 4000000 /dev/urandom > $dir/f
echo "want $(sha256sum $dir/f | cut -d' ' -f1)"
python3 -m http.server 18080 --bind 127.0.0.1 --directory $dir >/dev/null 2>&1 &
web=$!
node dist/cli/passt.js -f ${passtArgs} > $dir/out 2>&1 &
pid=$!
for i in $(seq 100); do grep -q "bound at" $dir/out && break; sleep 0.1; done
sock=$(sed -n 's/^UNIX domain socket bound at //p' $dir/out)
`;

const basics = ['ip -o addr show dev $IF', 'ping -c 2 -W 2 192.0.2.1', 'ping -6 -c 2 -W 3 fd00::1'];

// The host's end of the guest's TCP checks, one process, all on loopback:
//  18083 (127.0.0.1, ::1): upload sinks, one connection each; log the sha256 and size of what came.
//  18085 (127.0.0.1): the guest says its server on 8081 is up; fetch from it through -t
//    (127.0.0.1:18081, [::1]:18081), log the sha256 and size of what came, then close (done).
//  18084 (127.0.0.1, ::1): hold N connections, log passt's descriptor count, send "go" on each;
//    one more connection means the guest is about to be killed: touch MARK, then log how each
//    held connection ends (reset, eof, or still open after 10 s).
const peer = `
import hashlib, os, select, socket, sys, threading, time
pid, mark, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
end = time.time() + 150
def log(*a): print(*a, flush=True)
def server(port, v6=False):
    return socket.create_server(('::1' if v6 else '127.0.0.1', port), family=socket.AF_INET6 if v6 else socket.AF_INET)
def accept(ls):
    while time.time() < end:
        for s in select.select(ls, [], [], 0.5)[0]:
            return s.accept()[0]
    raise TimeoutError('no connection')
def drain(c):
    h, size = hashlib.sha256(), 0
    while b := c.recv(1 << 16):
        h.update(b); size += len(b)
    return h.hexdigest(), size
def sink(name, s):
    c = accept([s]); log(name, *drain(c)); c.close()
def inbound(s):
    m = accept([s])
    for name, addr in (('in4', '127.0.0.1'), ('in6', '::1')):
        try:
            with socket.create_connection((addr, 18081), timeout=30) as c:
                log(name, *drain(c))
        except OSError as e:
            log(name, 'error', repr(e))
    m.close()
def hold(ls):
    held = [accept(ls) for _ in range(n)]
    log('held', n, 'fds', len(os.listdir(f'/proc/{pid}/fd')))
    for c in held:
        c.sendall(b'go\\n')
    accept(ls).close()
    open(mark, 'w').close()
    t0 = time.time()
    for c in held:
        c.settimeout(max(0.1, t0 + 10 - time.time()))
        try: how = 'eof' if c.recv(1) == b'' else 'data'
        except ConnectionResetError: how = 'reset'
        except TimeoutError: how = 'open'
        log('ended', how, f'{time.time() - t0:.1f}s')
def run(f, *a):
    try: f(*a)
    except Exception as e: log('error', f.__name__, repr(e))
jobs = [(sink, 'up4', server(18083)), (sink, 'up6', server(18083, True)), (inbound, server(18085)),
        (hold, [server(18084), server(18084, True)])]
threads = [threading.Thread(target=run, args=j, daemon=True) for j in jobs]
for t in threads: t.start()
log('listening')
for t in threads: t.join(max(0, end - time.time()))
`;

// The guest's TCP checks, after the basics: (4, 5) download 4 MB over IPv4
// and IPv6; (6) write 3 MiB, print its sha256, upload it over IPv4 and IPv6
// (busybox nc half-closes at EOF and exits when the sink closes); (7) serve
// it on 8081 (reached from the host's 18081), with netstat recording each
// client's address as the guest sees it, and tell the host it is up (the
// host closes that connection when its clients are done); (8) hold three
// idle connections open (stdin a pipe that never ends, so no FIN) until the
// host says "go"; (9) tell the host to kill us, and wait to be killed.
const tcpChecks = [
  'wget -q -O- http://192.0.2.1:18080/f | sha256sum',
  'wget -q -O- http://[fd00::1]:18082/f | sha256sum',
  `dd if=/dev/urandom of=u bs=1024 count=3072 2>/dev/null && sha256sum u
timeout 30 nc 192.0.2.1 18083 < u && timeout 30 nc fd00::1 18083 < u && echo uploaded`,
  `printf '#!/bin/sh\\nnetstat -tn >> /root/peers\\ncat /root/u\\necho >> /root/served\\n' > srv && chmod +x srv
nc -ll -p 8081 -e /root/srv &
for i in $(seq 50); do netstat -ltn | grep -q ':8081 ' && break; sleep 0.1; done
timeout 60 nc 192.0.2.1 18085 || exit 1
echo "served $(cat served | wc -l)"; grep ':8081 ' peers`,
  `for a in 192.0.2.1 192.0.2.1 fd00::1; do sleep 600 | nc $a 18084 >> held & done
for i in $(seq 300); do [ "$(grep -c go held)" = 3 ] && break; sleep 0.1; done
echo "go $(grep -c go held)"`,
  'timeout 10 nc 192.0.2.1 18084; sleep 300',
];

const full = `${start('-s $dir/passt.sock -t 18081:8081')}
python3 -m http.server 18082 --bind ::1 --directory $dir >/dev/null 2>&1 &
web6=$!
cat > $dir/peer.py <<'PY'
${peer}
PY
python3 $dir/peer.py $pid $dir/killnow 3 > $dir/peer.log 2>&1 &
peer=$!
for i in $(seq 100); do grep -q listening $dir/peer.log && break; sleep 0.1; done
base=$(ls /proc/$pid/fd | wc -l)
../shared/vm/vm-run.sh --socket "$sock" --timeout 90 --dhcp6 -- "$@" &
vm=$!
for i in $(seq 1500); do [ -e $dir/killnow ] && break; kill -0 $vm 2>/dev/null || break; sleep 0.1; done
q=$(ps -o pid=,comm= --ppid $vm | awk '$2 ~ /^qemu/ { print $1 }')
echo "killing qemu: $q"
[ -n "$q" ] && kill -KILL $q
for i in $(seq 50); do n=$(ls /proc/$pid/fd | wc -l); [ $n = $base ] && break; sleep 0.1; done
echo "fds base=$base after=$n"
kill -0 $pid && echo "passt still running"
wait $vm
echo "vm-run=$?"
for i in $(seq 150); do kill -0 $peer 2>/dev/null || break; sleep 0.1; done
kill $peer 2>/dev/null
cat $dir/peer.log
kill $pid $web $web6; wait $pid
rm -rf $dir`;

/** Output and exit status of guest command `n` in vm-run's stdout. */
function guestCmd(out: string, n: number): { out: string; rc: string | undefined } {
  const m = new RegExp(`^### \\[${n}\\] \\$ .*\\n([\\s\\S]*?)^### \\[${n}\\] exit=(\\d+)$`, 'm').exec(out);
  return { out: m?.[1] ?? '', rc: m?.[2] };
}

test.serial('a qemu guest on our socket: DHCPv4, SLAAC, DHCPv6, pings, TCP both ways over IPv4 and IPv6, -t inbound, flows freed when qemu is killed', async (t) => {
  const r = await inFakehost(['bash', '-c', full, 'bash', ...basics, ...tcpChecks], { timeoutMs: 180_000 });
  const all = r.stdout + r.stderr;
  t.regex(r.stderr, /guest DHCP4 rc=0 .*ip=192\.0\.2\.2 mask=24 .*router=192\.0\.2\.1/, all);
  t.regex(r.stderr, /guest SLAAC addr=fd00::[0-9a-f:]+\/64/);
  t.regex(r.stderr, /guest DHCP6 dhcp6 reply=REPLY addr=fd00::2 /);
  for (let n = 1; n <= 8; n++) t.is(guestCmd(r.stdout, n).rc, '0', `guest command ${n} failed:\n${all}`);
  t.regex(guestCmd(r.stdout, 1).out, /inet 192\.0\.2\.2\/24/);
  t.is(r.stdout.match(/2 packets received, 0% packet loss/g)?.length, 2);

  // Downloads: the guest's sha256 of what it fetched is the file's.
  const want = /want ([0-9a-f]{64})/.exec(r.stdout)?.[1];
  t.truthy(want, all);
  t.regex(guestCmd(r.stdout, 4).out, new RegExp(`^${want}  -$`, 'm'), 'the guest fetched 4 MB over IPv4, intact');
  t.regex(guestCmd(r.stdout, 5).out, new RegExp(`^${want}  -$`, 'm'), 'the guest fetched 4 MB over IPv6 ([fd00::1] -> ::1), intact');

  // Uploads: the host received exactly what the guest wrote.
  const u = /^([0-9a-f]{64})  u$/m.exec(guestCmd(r.stdout, 6).out)?.[1];
  t.truthy(u, all);
  t.regex(guestCmd(r.stdout, 6).out, /^uploaded$/m);
  t.regex(r.stdout, new RegExp(`^up4 ${u} 3145728$`, 'm'), 'the host received the 3 MiB the guest sent over IPv4, intact');
  t.regex(r.stdout, new RegExp(`^up6 ${u} 3145728$`, 'm'), 'the host received the 3 MiB the guest sent over IPv6, intact');

  // Inbound -t 18081:8081: host clients on loopback get the guest's file,
  // and the guest sees them as the gateway, not as loopback.
  t.regex(r.stdout, new RegExp(`^in4 ${u} 3145728$`, 'm'), 'a host client on 127.0.0.1:18081 got the 3 MiB the guest served, intact');
  t.regex(r.stdout, new RegExp(`^in6 ${u} 3145728$`, 'm'), 'a host client on [::1]:18081 got the 3 MiB the guest served, intact (its SYN must go to the address the guest uses: its SLAAC one)');
  const peers = guestCmd(r.stdout, 7).out;
  t.regex(peers, /^served 2$/m);
  t.regex(peers, /:8081\s+(::ffff:)?192\.0\.2\.1:\d+\s+ESTABLISHED/, 'the guest saw the IPv4 client as 192.0.2.1');
  t.regex(peers, /:8081\s+fd00::1:\d+\s+ESTABLISHED/, 'the guest saw the IPv6 client as fd00::1');
  t.notRegex(peers, /\s(::ffff:)?127\.0\.0\.1:|\s::1:/, 'the guest saw no loopback address');

  // The guest vanishes with three connections open: passt lives on, its
  // descriptors go back to what they were before the guest came, and the
  // host's ends of the connections are closed (reset) at once.
  t.regex(guestCmd(r.stdout, 8).out, /^go 3$/m);
  t.regex(r.stdout, /^killing qemu: \d+$/m, all);
  t.regex(r.stdout, /^vm-run=2$/m, 'qemu was killed before the guest finished');
  t.notRegex(r.stdout, /^### \[9\] exit=/m);
  const base = Number(/fds base=(\d+)/.exec(r.stdout)?.[1]);
  const held = Number(/^held 3 fds (\d+)$/m.exec(r.stdout)?.[1]);
  t.true(held >= base + 3, `passt had ${held} descriptors with 3 flows open, ${base} before the guest came`);
  t.regex(r.stdout, new RegExp(`fds base=${base} after=${base}$`, 'm'), 'the flows and the socket of the killed guest were all closed');
  t.regex(r.stdout, /^passt still running$/m);
  const ended = [...r.stdout.matchAll(/^ended (\w+) ([\d.]+)s$/gm)];
  t.is(ended.length, 3, all);
  for (const [, how, s] of ended) {
    t.true(how === 'reset' || how === 'eof', `a held connection ended with "${how}"`);
    t.true(Number(s) < 5, `a held connection ended ${s} s after the guest was killed`);
  }
  t.notRegex(r.stdout, /^error /m);
  t.log(`boot to ready: ${/boot_to_ready=([\d.]+)s/.exec(r.stderr)?.[1]} s, qemu killed after ${/ total=([\d.]+)s/.exec(r.stderr)?.[1]} s`);
});

// The host's resolver (resolv.conf: 127.0.0.1) is on its loopback: the
// guest is told the gateway, and its lookups (UDP) reach that resolver.
// This passt also runs a policy: 10.0.0.1:5432 leads to the host's web
// server, port 18099 is refused.
const policy = `export default {
  outbound(flow) {
    if (flow.dst.port === 18099) return 'reject';
    if (flow.dst.addr === '10.0.0.1' && flow.dst.port === 5432) return { dst: { addr: '127.0.0.1', port: 18080 } };
    return 'allow';
  },
};`;

test.serial('the same guest through our qrap (-net socket,fd=5); its DNS lookups through the gateway reach the host resolver; a policy redirects and refuses', async (t) => {
  const script = `export QRAP="node $PWD/dist/cli/qrap.js"
pol=$(mktemp --suffix=.mjs)
cat > $pol <<'JS'
${policy}
JS
${start('--policy $pol --policy-timeout 5000')}
cat > $dir/dns.py <<'PY'
${dnsServer}
PY
python3 $dir/dns.py 127.0.0.1 ::1 > $dir/dns.log 2>&1 & dns=$!
../shared/vm/vm-run.sh --socket "$sock" --timeout 120 --qrap -- "$@" 'cat /etc/resolv.conf' 'nslookup test.example' 'nslookup -type=AAAA test.example fd00::1' \
  'wget -q -O- http://10.0.0.1:5432/f | sha256sum' 'wget -q -O- http://192.0.2.1:18099/ 2>&1; echo "wget=$?"'
rc=$?
kill $pid $web $dns; wait $pid
rm -rf $dir $pol
exit $rc`;
  const r = await inFakehost(['bash', '-c', script, 'bash', ...basics], { timeoutMs: 180_000 });
  t.is(r.status, 0, r.stdout + r.stderr);
  t.regex(r.stderr, /mode=qrap/);
  t.regex(r.stderr, /guest DHCP4 rc=0 .*ip=192\.0\.2\.2/);
  t.is(r.stdout.match(/0% packet loss/g)?.length, 2);
  const n = basics.length;
  t.regex(guestCmd(r.stdout, n + 1).out, /nameserver 192\.0\.2\.1/, r.stdout);
  t.regex(guestCmd(r.stdout, n + 2).out, /Address:\s+203\.0\.113\.7/, r.stdout);
  t.regex(guestCmd(r.stdout, n + 3).out, /Address:\s+2001:db8::7/, r.stdout);
  const want = /want ([0-9a-f]{64})/.exec(r.stdout)?.[1];
  t.truthy(want, r.stdout);
  t.regex(guestCmd(r.stdout, n + 4).out, new RegExp(`^${want}`, 'm'), r.stdout);
  t.regex(guestCmd(r.stdout, n + 5).out, /refused/i, r.stdout);
  t.regex(guestCmd(r.stdout, n + 5).out, /wget=1/, r.stdout);
});
