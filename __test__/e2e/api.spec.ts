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
