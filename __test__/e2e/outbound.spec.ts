// Outbound addressing end to end: -o / --outbound here, --map-guest-addr
// below. For -o: pasta in the fake host, whose second namespace
// (remoteNs, 198.51.100.2 and 2001:db8:1::2) runs a peer that answers
// each TCP connection and UDP datagram with the client address it saw.
// The fake host has a second address of each family on the link to it,
// one the routes would not choose (IPv4: a secondary address; IPv6: a
// deprecated one, RFC 6724 rule 3). With -o, the guest's flows must come
// from those, except towards the host's loopback (the mapped gateway);
// without -o, from the routes' choice. An address the host lacks is
// refused at start.
import test from 'ava';
import { file, inFakehost, remoteNs, waitPort } from '../helpers/fakehost.js';

// `python3 peer.py ADDR PORT`: tells each TCP client and UDP sender the
// address it came from ("from ADDR", IPv4 without the ::ffff: prefix).
const peer = `
import socket, sys, threading
addr, port = sys.argv[1], int(sys.argv[2])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
def text(a): return ("from " + a[0].removeprefix("::ffff:") + "\\n").encode()
def tcp():
    s = socket.socket(fam, socket.SOCK_STREAM)
    if fam == socket.AF_INET6: s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((addr, port)); s.listen()
    while True:
        c, a = s.accept(); c.sendall(text(a)); c.close()
u = socket.socket(fam, socket.SOCK_DGRAM)
if fam == socket.AF_INET6: u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
u.bind((addr, port))
threading.Thread(target=tcp, daemon=True).start()
while True:
    b, a = u.recvfrom(100); u.sendto(text(a), a)
`;

// `python3 client.py PROTO HOST PORT`: prints "PROTO HOST: <answer>".
const client = `
import socket, sys
proto, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
wait = float(sys.argv[4]) if len(sys.argv) > 4 else 5
try:
    if proto == "tcp":
        s = socket.create_connection((host, port), timeout=wait); a = s.makefile().readline()
    else:
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        s = socket.socket(fam, socket.SOCK_DGRAM); s.settimeout(wait); s.sendto(b"hi", (host, port))
        b, src = s.recvfrom(100); a = b.decode().strip() + " (reply from " + src[0] + ")"
    print(proto, host + ":", a.strip())
except OSError as e:
    print(proto, host + ":", "failed", e)
`;

const asks = `for p in tcp udp; do for h in 198.51.100.2 2001:db8:1::2; do python3 $d/client.py $p $h 18140; done; done
python3 $d/client.py tcp 192.0.2.1 18141; ping -c 1 -W 2 198.51.100.2 >/dev/null; echo "ping=$?"`;

for (const unprivileged of [false, true]) {
test(`-o: outbound TCP, UDP and pings leave from the given address of each family, not towards the host loopback; a foreign address is refused${unprivileged ? ' (as nobody)' : ''}`, async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d); chmod 755 $d
    ${remoteNs}
    ip addr add 198.51.100.9/24 dev r0
    ip -6 addr add 2001:db8:1::9/64 dev r0 nodad preferred_lft 0
    ${file('peer.py', peer)}
    ${file('client.py', client)}
    ${file('asks.sh', asks)}
    chmod 644 $d/*
    nsenter --net=/proc/$r/ns/net python3 $d/peer.py :: 18140 & p=$!
    python3 $d/peer.py 127.0.0.1 18141 & l=$!
    ${waitPort('198.51.100.2', 18140)}
    ${waitPort('127.0.0.1', 18141)}
    echo "== with -o"
    node dist/cli/pasta.js --config-net -q -o 198.51.100.9 --outbound 2001:db8:1::9 -- sh -c "d=$d; . $d/asks.sh"
    echo "== without"
    node dist/cli/pasta.js --config-net -q -- sh -c "d=$d; . $d/asks.sh"
    echo "== foreign"
    node dist/cli/pasta.js --config-net -q -o 203.0.113.7 -- true; echo "status=$?"
    kill $p $l $r; rm -rf $d`,
  ], { unprivileged });
  const out = r.stdout + r.stderr;
  const [, withO = '', without = ''] = r.stdout.split(/^== .*$/m);
  for (const p of ['tcp', 'udp']) {
    t.regex(withO, new RegExp(`^${p} 198\\.51\\.100\\.2: from 198\\.51\\.100\\.9\\b`, 'm'), out);
    t.regex(withO, new RegExp(`^${p} 2001:db8:1::2: from 2001:db8:1::9\\b`, 'm'), out);
    // Without -o the routes choose the link's first address: -o did it.
    t.regex(without, new RegExp(`^${p} 198\\.51\\.100\\.2: from 198\\.51\\.100\\.1\\b`, 'm'), out);
    t.regex(without, new RegExp(`^${p} 2001:db8:1::2: from 2001:db8:1::1\\b`, 'm'), out);
  }
  // The host's loopback services still see a loopback client.
  t.regex(withO, /^tcp 192\.0\.2\.1: from 127\.0\.0\.1$/m, out);
  t.regex(withO, /^ping=0$/m, out);
  t.regex(r.stdout, /^status=1$/m, out);
  t.regex(r.stderr, /^pasta: -o 203\.0\.113\.7: cannot bind to it: .*$/m, out);
});
}

// --map-guest-addr: the guest shares the host's address (192.0.2.2,
// fd00::2), so it cannot reach the host's services there; the address
// given leads to them, and the host's own clients appear from it.
test('--map-guest-addr: the guest reaches the host\'s copy of its address through the given one, and host clients from it appear from there', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d); chmod 755 $d
    ${file('peer.py', peer)}
    ${file('client.py', client)}
    chmod 644 $d/*
    # The alias exists in the fake host too, with nothing listening on
    # it: without the option, the guest's connection to it is refused
    # there, and goes nowhere else.
    ip addr add 169.254.1.2/32 dev lo
    python3 $d/peer.py 192.0.2.2 18150 & p=$!
    python3 $d/peer.py fd00::2 18150 & p6=$!
    ${waitPort('192.0.2.2', 18150)}
    ${waitPort('fd00::2', 18150)}
    ${file('ns.sh', `python3 $d/peer.py :: 18151 & s=$!
if [ -n "$m" ]; then
  for h in 169.254.1.2 fd00::a; do for p in tcp udp; do python3 $d/client.py $p $h 18150; done; done
  ping -c 1 -W 2 169.254.1.2 | grep -o "from [0-9.]*"
else
  python3 $d/client.py tcp 169.254.1.2 18150 1
fi
touch $d/asked; for i in $(seq 100); do [ -e $d/told ] && break; sleep 0.05; done; kill $s`)}
    for m in "--map-guest-addr 169.254.1.2 --map-guest-addr fd00::a" ""; do
      rm -f $d/asked $d/told
      echo "== map: $m"
      node dist/cli/pasta.js --config-net -q -t 18151 -u none $m -- sh -c "d=$d; m='$m'; . $d/ns.sh" & q=$!
      for i in $(seq 200); do [ -e $d/asked ] && break; sleep 0.05; done
      python3 -c 'import socket; s = socket.create_connection(("192.0.2.2", 18151), timeout=5, source_address=("192.0.2.2", 0)); print("inbound:", s.makefile().readline().strip())'
      touch $d/told; wait $q
    done
    kill $p $p6; rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  const [, mapped = '', plain = ''] = r.stdout.split(/^== map:.*$/m);
  // Outbound: the host's service at its own address answers, and sees
  // its own address; UDP replies and pings come back from the alias.
  t.regex(mapped, /^tcp 169\.254\.1\.2: from 192\.0\.2\.2$/m, out);
  t.regex(mapped, /^udp 169\.254\.1\.2: from 192\.0\.2\.2 \(reply from 169\.254\.1\.2\)$/m, out);
  t.regex(mapped, /^tcp fd00::a: from fd00::2$/m, out);
  t.regex(mapped, /^udp fd00::a: from fd00::2 \(reply from fd00::a\)$/m, out);
  t.regex(mapped, /^from 169\.254\.1\.2$/m, out);
  // Inbound: a host client from that address appears from the alias,
  // not from the gateway as without the option.
  t.regex(mapped, /^inbound: from 169\.254\.1\.2$/m, out);
  t.regex(plain, /^inbound: from 192\.0\.2\.1$/m, out);
  t.regex(plain, /^tcp 169\.254\.1\.2: failed/m, out);
});
