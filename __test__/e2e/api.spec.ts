// The programmatic API on a live pasta: forwards added and removed at run
// time (a host client gets through, then is refused), flow events, and
// stats that count live flows and bytes.
import test from 'ava';
import { inFakehost, root } from '../helpers/fakehost.js';

const script = `
import { startPasta } from '${root}ts/index.ts';
import { connect } from 'node:net';
const dir = process.argv[2];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pasta = await startPasta({
  configNet: true,
  noSplice: true,
  flowEvents: true,
  command: ['sh', '-c', 'python3 -m http.server 8080 --bind 0.0.0.0 --directory ' + dir + ' >/dev/null 2>&1 & s=$!; sleep 6; kill $s'],
});
const opened = [], ended = [];
pasta.on('flow-open', (f) => opened.push(f));
pasta.on('flow-end', (r) => ended.push(r));
const refused = () => new Promise((resolve) => {
  const c = connect(18500, '127.0.0.1');
  c.on('connect', () => { c.destroy(); resolve('connected'); });
  c.on('error', (e) => resolve(e.code));
});
console.log('before', await refused());
pasta.forward.add('tcp', '18500:8080');
let body = '';
for (let i = 0; i < 100 && !body; i++) {
  try { body = await (await fetch('http://127.0.0.1:18500/x')).text(); } catch { await sleep(100); }
}
console.log('body', body.trim());
const live = pasta.stats();
console.log('list', JSON.stringify(pasta.forward.list().tcp.map((f) => f.port)));
console.log('removed', pasta.forward.remove('tcp', '18500:8080'));
console.log('after', await refused());
await sleep(300);
const s = pasta.stats();
console.log('stats', JSON.stringify({ flows: live.flows, bytes: s.bytes }));
console.log('events', JSON.stringify({ opened: opened.filter((f) => f.direction === 'inbound').length, ended: ended.filter((r) => r.direction === 'inbound' && r.bytesToGuest > 0).length }));
pasta.stop();
process.exit(0);
`;

test('forward.add, forward.remove, flow events and stats on a running pasta', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d); chmod 755 $d; echo "api $RANDOM" > $d/x; chmod 644 $d/x; cat $d/x
    cat > $d/run.mjs <<'EOF_RUN'
${script}
EOF_RUN
    cp $d/run.mjs $d/run.mts
    timeout 60 node --import=tsx $d/run.mts $d; echo "node=$?"; rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  const want = /^(api \d+)$/m.exec(r.stdout)?.[1];
  t.truthy(want, out);
  t.regex(r.stdout, /^before ECONNREFUSED$/m, out);
  t.regex(r.stdout, new RegExp(`^body ${want}$`, 'm'), out);
  t.regex(r.stdout, /^list \[18500(,18500)?\]$/m, out);
  t.regex(r.stdout, /^removed [12]$/m, out);
  t.regex(r.stdout, /^after ECONNREFUSED$/m, out);
  const stats = JSON.parse(/^stats (.*)$/m.exec(r.stdout)?.[1] ?? 'null') as {
    flows: { tcp: Record<string, number> };
    bytes: { fromGuest: number; toGuest: number };
  } | null;
  t.truthy(stats, out);
  t.true(Object.keys(stats!.flows.tcp).includes('established'), out);
  t.true(stats!.bytes.toGuest > 0 && stats!.bytes.fromGuest > 0, out);
  const events = JSON.parse(/^events (.*)$/m.exec(r.stdout)?.[1] ?? 'null') as { opened: number; ended: number } | null;
  t.truthy(events, out);
  t.true(events!.opened >= 1, out);
  t.true(events!.ended >= 1, out);
  t.regex(r.stdout, /node=0/, out);
});

// -T/-U at run time: namespace clients reach host loopback echo servers
// through forwards added while pasta runs, and are refused once removed.
const nsScript = `
import { startPasta } from '${root}ts/index.ts';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { appendFileSync, readFileSync } from 'node:fs';
const dir = process.argv[2];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const tcp = createServer((c) => c.on('data', (d) => c.end('echo:' + d)));
await new Promise((r) => tcp.listen(18601, '127.0.0.1', r));
const udp = createSocket('udp4');
udp.on('message', (m, from) => udp.send('echo:' + m, from.port, from.address));
await new Promise((r) => udp.bind(18603, '127.0.0.1', r));
// The namespace's side: a shell reading steps from a FIFO and running the
// probe of each, its answer appended to a file.
const pasta = await startPasta({
  configNet: true,
  command: ['sh', '-c', 'exec 3<>' + dir + '/fifo; while read -r k p <&3; do [ "$k" = quit ] && break; echo "$k $p $(python3 ' + dir + '/probe.py $k $p)" >> ' + dir + '/out; done'],
});
let asked = 0;
const probe = async (kind, port) => {
  asked++;
  appendFileSync(dir + '/fifo', kind + ' ' + port + '\\n');
  for (let i = 0; i < 100; i++) {
    const lines = readFileSync(dir + '/out', 'utf8').split('\\n').filter(Boolean);
    if (lines.length >= asked) return lines[asked - 1].split(' ').slice(2).join(' ');
    await sleep(100);
  }
  return 'no answer';
};
console.log('before', await probe('tcp', 18600), await probe('udp', 18602));
pasta.nsForward.add('tcp', '18600:18601');
pasta.nsForward.add('udp', [{ addr: '127.0.0.1', port: 18602, hostPort: 18603 }]);
console.log('added', await probe('tcp', 18600), await probe('udp', 18602));
try {
  pasta.nsForward.add('tcp', '127.0.0.1/18604,18600');
  console.log('again added');
} catch (e) {
  console.log('again', e.message);
}
console.log('partial', await probe('tcp', 18604));
console.log('list', JSON.stringify(pasta.nsForward.list()));
console.log('removed', pasta.nsForward.remove('tcp', '18600'), pasta.nsForward.remove('udp', '18602'));
console.log('after', await probe('tcp', 18600), await probe('udp', 18602));
appendFileSync(dir + '/fifo', 'quit\\n');
pasta.stop();
tcp.close();
udp.close();
process.exit(0);
`;

const probe = `
import socket, sys
kind, port = sys.argv[1], int(sys.argv[2])
try:
    if kind == 'tcp':
        s = socket.create_connection(('127.0.0.1', port), timeout=3)
        s.sendall(b'tcp')
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.connect(('127.0.0.1', port))
        s.send(b'udp')
    print(s.recv(100).decode())
except Exception as e:
    print(type(e).__name__)
`;

test('nsForward.add and remove: -T and -U while pasta runs', async (t) => {
  const r = await inFakehost([
    'bash',
    '-c',
    `set -u; d=$(mktemp -d); mkfifo $d/fifo; : > $d/out
    cat > $d/run.mts <<'EOF_RUN'
${nsScript}
EOF_RUN
    cat > $d/probe.py <<'EOF_PROBE'
${probe}
EOF_PROBE
    timeout 60 node --import=tsx $d/run.mts $d; echo "node=$?"; rm -rf $d`,
  ]);
  const out = r.stdout + r.stderr;
  t.regex(r.stdout, /^before ConnectionRefusedError ConnectionRefusedError$/m, out);
  t.regex(r.stdout, /^added echo:tcp echo:udp$/m, out);
  t.regex(r.stdout, /^again .*18600.*in use/im, out);
  t.regex(r.stdout, /^partial ConnectionRefusedError$/m, out);
  const list = JSON.parse(/^list (.*)$/m.exec(r.stdout)?.[1] ?? 'null') as { tcp: { addr: string; port: number; hostPort: number }[]; udp: unknown[] } | null;
  t.truthy(list, out);
  t.true(list!.tcp.some((f) => f.addr === '127.0.0.1' && f.port === 18600 && f.hostPort === 18601), out);
  t.deepEqual(list!.udp, [{ addr: '127.0.0.1', port: 18602, hostPort: 18603 }], out);
  t.regex(r.stdout, /^removed [12] 1$/m, out);
  t.regex(r.stdout, /^after ConnectionRefusedError ConnectionRefusedError$/m, out);
  t.regex(r.stdout, /node=0/, out);
});
