// pasta end to end: a real network namespace (its own kernel stack) comes
// up on our tap, configured by --config-net or by real DHCP/SLAAC/DHCPv6
// clients, and pings the gateway, which the engine maps to the host's
// loopback. Everything runs inside ../shared/testnet/fakehost.sh.
import test from 'ava';
import { pastaInFakehost } from '../helpers/fakehost.js';

const pingBoth = 'ping -c 2 -W 2 192.0.2.1 && ping -6 -c 2 -W 2 fd00::1';

for (const unprivileged of [false, true]) {
  const who = unprivileged ? ' (as nobody)' : '';
  test(`--config-net copies the host's addresses and routes; the gateway answers pings${who}`, async (t) => {
    const r = await pastaInFakehost(
      { configNet: true },
      `ip -o addr show dev eth0; ip route; ip -6 route; ip -o link show eth0; ${pingBoth}`,
      { unprivileged },
    );
    t.is(r.result?.status, 0, r.stdout + r.stderr);
    t.regex(r.stdout, /inet 192\.0\.2\.2\/24 /);
    t.regex(r.stdout, /inet6 fd00::2\/64 /);
    t.regex(r.stdout, /default via 192\.0\.2\.1 dev eth0/);
    t.regex(r.stdout, /default via fd00::1 dev eth0/);
    t.regex(r.stdout, /mtu 65520/);
    t.regex(r.stdout, /2 packets transmitted, 2 received, 0% packet loss/);
    t.is(r.stdout.match(/0% packet loss/g)?.length, 2);
  });
}

test('udhcpc gets the lease: address, mask, router, DNS, MTU, search list, host name', async (t) => {
  const script = [
    'cat > /tmp/lease.sh <<"EOF"',
    '#!/bin/sh',
    '[ "$1" = bound ] && echo "LEASE ip=$ip subnet=$subnet router=$router dns=$dns mtu=$mtu search=$search lease=$lease hostname=$hostname"',
    'exit 0',
    'EOF',
    'chmod +x /tmp/lease.sh',
    'ip link set eth0 up',
    'busybox udhcpc -i eth0 -n -q -f -t 5 -s /tmp/lease.sh',
  ].join('\n');
  const r = await pastaInFakehost({ mtu: 65520, search: ['example.org', 'test.lan'], hostname: 'guest1' }, script);
  t.is(r.result?.status, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /LEASE ip=192\.0\.2\.2 subnet=255\.255\.255\.0 router=192\.0\.2\.1 dns=192\.0\.2\.1 mtu=65520 search=example\.org test\.lan lease=4294967295 hostname=guest1/);
});

test('SLAAC from our router advertisement, and dhclient -6 gets the DHCPv6 address', async (t) => {
  const script = [
    'ip link set eth0 up',
    'for i in $(seq 50); do ip -6 -o addr show dev eth0 scope global | grep -q "fd00::.*/64.*dynamic" && break; sleep 0.1; done',
    'ip -6 -o addr show dev eth0 scope global',
    'timeout 20 dhclient -6 -1 -lf /tmp/dh6.lease -pf /tmp/dh6.pid eth0',
    'ip -6 -o addr show dev eth0 scope global',
    // Leased, dhclient stays in the background: stopped by its PID.
    'kill "$(cat /tmp/dh6.pid)" 2>/dev/null',
    'ip -6 route show default',
  ].join('\n');
  const r = await pastaInFakehost({}, script);
  t.is(r.result?.status, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /inet6 fd00::[0-9a-f:]+\/64 scope global (tentative )?dynamic/, 'a SLAAC address in the host prefix');
  t.regex(r.stdout, /inet6 fd00::2\/128 scope global/, 'the DHCPv6 address');
  t.regex(r.stdout, /default via fe80::1 dev eth0/, 'our router');
});

test('--no-map-gw: the gateway address is no longer the host', async (t) => {
  const r = await pastaInFakehost({ configNet: true, noMapGw: true }, 'ping -c 1 -W 1 192.0.2.1');
  t.not(r.result?.status, 0, 'the ping went to the real (unreachable) gateway');
  t.regex(r.stdout, /100% packet loss/);
});

test("pasta reports the command's exit status", async (t) => {
  const r = await pastaInFakehost({}, 'exit 7');
  t.is(r.result?.status, 7);
});

test('the pasta CLI: --config-net, the command runs, its status is ours', async (t) => {
  const { inFakehost } = await import('../helpers/fakehost.js');
  const r = await inFakehost(['node', 'dist/cli/pasta.js', '--stats', '--config-net', '--', 'sh', '-c', 'ip -o addr show dev eth0; exit 4']);
  t.is(r.status, 4, r.stderr);
  t.regex(r.stdout, /inet 192\.0\.2\.2\/24/);
  t.regex(r.stderr, /^pasta: frames in \d+, out \d+, tx dropped 0, flow errors 0; dropped: /m, '--stats on exit');
});

test('a 10-second storm of random frames is dropped and counted; the guest is served afterwards', async (t) => {
  // Random frames (random EtherTypes, truncated and garbage IPv4/IPv6/ARP
  // headers) written on the namespace's side of the tap with a packet
  // socket, then a real DHCP exchange and pings.
  const storm = [
    'import os, random, socket, time',
    's = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)',
    's.bind(("eth0", 0))',
    'random.seed(1)',
    'n, end = 0, time.time() + 10',
    'while time.time() < end:',
    '    kind = random.choice([b"\\x08\\x00", b"\\x86\\xdd", b"\\x08\\x06", os.urandom(2)])',
    '    body = bytes([0x45]) + os.urandom(random.randrange(0, 200)) if kind == b"\\x08\\x00" else os.urandom(random.randrange(0, 200))',
    '    frame = b"\\xff" * 6 + b"\\x02\\x00\\x00\\x00\\x00\\x09" + kind + body',
    '    try:',
    '        s.send(frame); n += 1',
    '    except OSError:',
    '        pass',
    'print("STORM", n)',
  ].join('\n');
  const script = [
    `cat > /tmp/storm.py <<'EOF'\n${storm}\nEOF`,
    'ip link set eth0 up',
    'python3 /tmp/storm.py',
    'busybox udhcpc -i eth0 -n -q -f -t 5 -s /bin/true || exit 10',
    'ip addr add 192.0.2.2/24 dev eth0 && ip route add default via 192.0.2.1',
    'ping -c 2 -W 2 192.0.2.1',
  ].join('\n');
  const r = await pastaInFakehost({}, script, { timeoutMs: 90_000 });
  t.is(r.result?.status, 0, r.stdout + r.stderr);
  const sent = Number(/STORM (\d+)/.exec(r.stdout)?.[1]);
  t.true(sent > 1000, `storm frames sent: ${sent}`);
  t.regex(r.stdout, /0% packet loss/);
  const stats = r.result!.stats as { framesIn: number; drops: Record<string, number> };
  const dropped = Object.values(stats.drops).reduce((a, b) => a + b, 0);
  // The tap drops what the engine has no time to read (like a NIC), so
  // not every frame sent arrives; every one that arrives is counted.
  t.true(stats.framesIn > 1000, `frames in ${stats.framesIn} of ${sent} sent`);
  t.true(stats.framesIn - dropped < 200, `only the real guest's frames were used: in ${stats.framesIn}, dropped ${dropped}: ${JSON.stringify(stats.drops)}`);
  t.log(`storm: ${sent} frames, drops ${JSON.stringify(stats.drops)}`);
});

test('pasta PID: joins an existing namespace, configures it, serves it until stopped', async (t) => {
  const { inFakehost } = await import('../helpers/fakehost.js');
  const script = `
    unshare --user --map-root-user --net sleep 60 &
    target=$!
    sleep 0.3
    node dist/cli/pasta.js -f --config-net --pid /tmp/pasta-pid.$$ $target &
    pasta=$!
    for i in $(seq 50); do [ -s /tmp/pasta-pid.$$ ] && break; sleep 0.1; done
    [ "$(cat /tmp/pasta-pid.$$)" = "$pasta" ] || { echo "pid file: $(cat /tmp/pasta-pid.$$) vs $pasta"; exit 9; }
    nsenter --preserve-credentials -U -n -t $target sh -c 'ip -o addr show dev eth0; ping -c 2 -W 2 192.0.2.1'
    rc=$?
    kill $pasta; wait $pasta; echo "pasta exit $?"
    kill $target
    rm -f /tmp/pasta-pid.$$
    exit $rc`;
  const r = await inFakehost(['bash', '-c', script], { timeoutMs: 60_000 });
  t.is(r.status, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /inet 192\.0\.2\.2\/24/);
  t.regex(r.stdout, /0% packet loss/);
  t.regex(r.stdout, /pasta exit 0/);
});

test('--pcap captures both directions, readable by tcpdump -r, with complete checksums', async (t) => {
  const { inFakehost } = await import('../helpers/fakehost.js');
  const { spawnSync } = await import('node:child_process');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const dir = mkdtempSync('/tmp/pasta-pcap-');
  const file = `${dir}/c.pcap`;
  // A ping, a UDP echo through the gateway, and a refused TCP connect:
  // with checksum offload on the tap, both sides would leave TCP and UDP
  // checksums half-made, and the capture would show them so.
  const guest = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(b"hello", ("192.0.2.1", 18500)); print("udp", s.recv(100).decode())
try:
    socket.create_connection(("192.0.2.1", 18501), timeout=2)
except OSError as e:
    print("tcp", e)
`;
  const r = await inFakehost([
    'bash',
    '-c',
    `python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 18500))
while True:
    b, a = s.recvfrom(2000); s.sendto(b, a)' & e=$!
    node dist/cli/pasta.js --config-net --pcap ${file} -- sh -c 'ping -c 1 -W 2 192.0.2.1 && python3 -c "$0"' '${guest.replaceAll("'", "'\\''")}'
    echo "pasta=$?"; kill $e`,
  ]);
  const out = r.stdout + r.stderr;
  t.regex(r.stdout, /^udp hello$/m, out);
  t.regex(r.stdout, /^tcp .*refused/m, out);
  t.regex(r.stdout, /pasta=0/, out);
  const dump = spawnSync('tcpdump', ['-vv', '-nr', file], { encoding: 'utf8' });
  rmSync(dir, { recursive: true, force: true });
  t.regex(dump.stdout, /192\.0\.2\.2 > 192\.0\.2\.1: ICMP echo request/);
  t.regex(dump.stdout, /192\.0\.2\.1 > 192\.0\.2\.2: ICMP echo reply/);
  // Each way, for UDP and TCP: tcpdump -vv checks every checksum.
  t.regex(dump.stdout, /192\.0\.2\.2\.\d+ > 192\.0\.2\.1\.18500: \[udp sum ok\]/, dump.stdout);
  t.regex(dump.stdout, /192\.0\.2\.1\.18500 > 192\.0\.2\.2\.\d+: \[udp sum ok\]/, dump.stdout);
  t.regex(dump.stdout, /192\.0\.2\.2\.\d+ > 192\.0\.2\.1\.18501: Flags \[S\], cksum 0x[0-9a-f]+ \(correct\)/, dump.stdout);
  t.regex(dump.stdout, /192\.0\.2\.1\.18501 > 192\.0\.2\.2\.\d+: Flags \[R\.\], cksum 0x[0-9a-f]+ \(correct\)/, dump.stdout);
  t.notRegex(dump.stdout, /incorrect|bad udp cksum/, dump.stdout);
});

test('--netns PATH: pasta quits once the namespace file is deleted, and stays with --no-netns-quit', async (t) => {
  const { inFakehost } = await import('../helpers/fakehost.js');
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d)
    for q in "" --no-netns-quit; do
      touch $d/ns; unshare --net=$d/ns true
      node dist/cli/pasta.js -f -q --config-net $q --netns $d/ns & p=$!
      for i in $(seq 100); do nsenter --net=$d/ns ip -o -4 addr show | grep -q 192.0.2.2 && break; sleep 0.1; done
      echo "configured=$(nsenter --net=$d/ns ip -o -4 addr show | grep -c 192.0.2.2)"
      umount $d/ns; rm $d/ns
      for i in $(seq 30); do kill -0 $p 2>/dev/null || break; sleep 0.1; done
      if kill -0 $p 2>/dev/null; then echo "q=$q running"; kill $p; wait $p; else wait $p; echo "q=$q exited $?"; fi
    done
    rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  t.is(r.stdout.match(/^configured=1$/gm)?.length, 2, out);
  t.regex(r.stdout, /^q= exited 0$/m, out);
  t.regex(r.stdout, /^q=--no-netns-quit running$/m, out);
});

test('--trace: a line per frame each way, in the log', async (t) => {
  const { inFakehost } = await import('../helpers/fakehost.js');
  const r = await inFakehost([
    'bash',
    '-c',
    `python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 18160)); s.listen(); c, _ = s.accept(); c.sendall(b"hi"); c.close()' & p=$!
    sleep 0.3
    node dist/cli/pasta.js --trace --config-net -q -- sh -c 'ping -c 1 -W 2 192.0.2.1 >/dev/null; python3 -c "import socket; print(socket.create_connection((\\"192.0.2.1\\", 18160), timeout=5).recv(10))"'
    wait $p`,
  ]);
  const out = r.stdout + r.stderr;
  t.regex(r.stdout, /b'hi'/, out);
  t.regex(r.stderr, /^pasta: in {2}192\.0\.2\.2 > 192\.0\.2\.1 ICMP type 8 code 0 id \d+ seq 1 len 64$/m, out);
  t.regex(r.stderr, /^pasta: out 192\.0\.2\.1 > 192\.0\.2\.2 ICMP type 0 code 0 id \d+ seq 1 len 64$/m, out);
  t.regex(r.stderr, /^pasta: in {2}192\.0\.2\.2:(\d+) > 192\.0\.2\.1:18160 TCP \[S\] seq \d+ win \d+ len 0$/m, out);
  t.regex(r.stderr, /^pasta: out 192\.0\.2\.1:18160 > 192\.0\.2\.2:\d+ TCP \[S\.\] seq \d+ ack \d+ win \d+ len 0$/m, out);
  t.regex(r.stderr, /^pasta: out 192\.0\.2\.1:18160 > 192\.0\.2\.2:\d+ TCP \[P?\.\] seq \d+ ack \d+ win \d+ len 2$/m, out);
});
