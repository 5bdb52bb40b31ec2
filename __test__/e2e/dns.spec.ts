// DNS forwarding inside the fake host, whose resolv.conf names a resolver
// on the host's loopback (127.0.0.53, as systemd-resolved does): the
// guest is offered the gateway and dig reaches that resolver through it,
// over UDP and TCP; with --dns-forward ADDR, through ADDR instead.
import test from 'ava';
import { fakehostSh, root } from '../helpers/fakehost.js';
import { spawn } from 'node:child_process';

// A tiny authoritative server on 127.0.0.53 and ::1 port 53, UDP and TCP:
// A test.example. = 203.0.113.7, AAAA = 2001:db8::7; logs each query.
const server = `
import socket, struct, threading
def answer(q):
    i = 12; labels = []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode()); i += 1 + q[i]
    qtype = struct.unpack("!H", q[i + 1:i + 3])[0]; end = i + 5
    name = ".".join(labels) + "."
    rdata = {1: socket.inet_pton(socket.AF_INET, "203.0.113.7"), 28: socket.inet_pton(socket.AF_INET6, "2001:db8::7")}.get(qtype) if name == "test.example." else None
    flags = 0x8400 if rdata or name == "test.example." else 0x8403
    head = q[:2] + struct.pack("!HHHHH", flags, 1, 1 if rdata else 0, 0, 0)
    body = q[12:end]
    if rdata: body += b"\\xc0\\x0c" + struct.pack("!HHIH", qtype, 1, 60, len(rdata)) + rdata
    print("query", name, qtype, flush=True)
    return head + body
def udp(fam, addr):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((addr, 53))
    while True:
        q, a = s.recvfrom(4096); s.sendto(answer(q), a)
def tcp(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((addr, 53)); s.listen()
    while True:
        c, a = s.accept(); n = struct.unpack("!H", c.recv(2))[0]; q = b""
        while len(q) < n: q += c.recv(n - len(q))
        r = answer(q); c.sendall(struct.pack("!H", len(r)) + r); c.close()
for fam, addr in ((socket.AF_INET, "127.0.0.53"), (socket.AF_INET6, "::1")):
    for f in (udp, tcp):
        threading.Thread(target=f, args=(fam, addr), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
`;

function run(script: string, unprivileged = false): Promise<string> {
  const prefix = unprivileged ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'] : [];
  const argv = [...prefix, fakehostSh, '--dns', '127.0.0.53', '--', 'bash', '-c', script];
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

function script(flags: string, targets: string[]): string {
  const digs = targets
    .flatMap((t) => [
      `echo "udp ${t} $(dig +short +time=2 +tries=1 @${t} test.example A)"`,
      `echo "tcp ${t} $(dig +tcp +short +time=2 +tries=1 @${t} test.example AAAA)"`,
    ])
    .join('\n');
  return `
d=$(mktemp -d); chmod 755 $d
cat > $d/dns.py <<'PY'
${server}
PY
python3 $d/dns.py > $d/log 2>&1 & s=$!
for i in $(seq 50); do grep -q ready $d/log && break; sleep 0.1; done
cat > $d/digs.sh <<'SH'
echo "told $(grep nameserver /etc/resolv.conf | head -1)"
${digs}
SH
timeout 40 node dist/cli/pasta.js --config-net ${flags} -- sh $d/digs.sh
echo "pasta=$?"
kill $s; cat $d/log; rm -rf $d`;
}

for (const unprivileged of [false, true]) {
  test(`a resolver on the host's loopback answers dig through the gateway, UDP and TCP, IPv4 and IPv6${unprivileged ? ' (as nobody)' : ''}`, async (t) => {
    const out = await run(script('', ['192.0.2.1', 'fd00::1']), unprivileged);
    for (const proto of ['udp', 'tcp']) {
      const want = proto === 'udp' ? '203.0.113.7' : '2001:db8::7';
      t.regex(out, new RegExp(`${proto} 192\\.0\\.2\\.1 ${want.replace(/\./g, '\\.')}$`, 'm'), out);
      t.regex(out, new RegExp(`${proto} fd00::1 ${want.replace(/\./g, '\\.')}$`, 'm'), out);
    }
    t.regex(out, /query test\.example\. 1/, out);
    t.regex(out, /pasta=0/, out);
  });
}

test('--dns-forward ADDR: queries to ADDR reach the host resolver, UDP and TCP', async (t) => {
  const out = await run(script('--dns-forward 192.0.2.53 --dns-forward fd00::53 --dns-host ::1', ['192.0.2.53', 'fd00::53']));
  t.regex(out, /udp 192\.0\.2\.53 203\.0\.113\.7$/m, out);
  t.regex(out, /tcp 192\.0\.2\.53 2001:db8::7$/m, out);
  t.regex(out, /udp fd00::53 203\.0\.113\.7$/m, out);
  t.regex(out, /tcp fd00::53 2001:db8::7$/m, out);
  t.regex(out, /pasta=0/, out);
});
