// DNS forwarding inside the fake host, whose resolv.conf names a resolver
// on the host's loopback (127.0.0.53, as systemd-resolved does): the
// guest is offered the gateway and dig reaches that resolver through it,
// over UDP and TCP; with --dns-forward ADDR, through ADDR instead.
import test from 'ava';
import { inFakehost } from '../helpers/fakehost.js';
import { dnsServer } from '../helpers/dns.js';

async function run(script: string, unprivileged = false): Promise<string> {
  const r = await inFakehost(['bash', '-c', script], { unprivileged, dns: '127.0.0.53' });
  return r.stdout + r.stderr;
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
${dnsServer}
PY
python3 $d/dns.py 127.0.0.53 ::1 > $d/log 2>&1 & s=$!
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
