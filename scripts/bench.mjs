#!/usr/bin/env node
// npm run bench: our pasta side by side with Debian's pasta and
// slirp4netns, our splice path (-T, -U) with Debian pasta's and plain host
// loopback, and the cost of policy hooks (crr: none, no-op, async), through ../shared/bench/netbench.sh (interleaved rounds,
// medians). A benchmark, not a test: it prints and records, asserts nothing.
//
//   npm run bench [-- --rounds N --seconds S]
//
// Results: bench-results/latest.json (and a dated copy), the two raw
// netbench JSON files beside it.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const netbench = resolve(root, '../shared/bench/netbench.sh');
const outDir = join(root, 'bench-results');
const ours = `node ${join(root, 'dist/cli/pasta.js')} --config-net --netns-only -q -f`;

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : dflt;
};
const rounds = opt('rounds', '3');
const seconds = opt('seconds', '5');

mkdirSync(outDir, { recursive: true });

function run(name, impls, extra) {
  const json = join(outDir, `${name}.json`);
  const argv = [...impls.flat(), '--rounds', rounds, '--seconds', seconds, ...extra, '--json', json];
  process.stderr.write(`bench: ${name}: netbench ${argv.join(' ')}\n`);
  // npm run puts node_modules/.bin first in PATH, where our own `pasta`
  // is linked: the reference must be Debian's.
  const PATH = (process.env.PATH ?? '')
    .split(':')
    .filter((d) => !d.includes('node_modules'))
    .join(':');
  const r = spawnSync(netbench, argv, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, PATH } });
  if (r.status !== 0) {
    process.stderr.write(`bench: ${name}: netbench exited with ${r.status}\n`);
    process.exit(1);
  }
  return JSON.parse(readFileSync(json, 'utf8'));
}

// Through the tap: our pasta against Debian's and slirp4netns.
const main = run(
  'tap',
  [
    ['--impl', 'pasta'],
    ['--impl', `${ours} -t 15210 -u none -T none -U none --`, '--name', 'ours', '--fwd-port', '15210'],
    ['--impl', 'slirp4netns'],
  ],
  [],
);
// The splice path: the namespace's own 127.0.0.1 forwarded to the host's
// with -T and -U, against plain loopback.
const splice = run(
  'splice',
  [
    ['--impl', 'host'],
    ['--impl', 'pasta-splice'],
    ['--impl', `${ours} -t none -u none -T 15201-15203 -U 15201 --`, '--name', 'ours-splice', '--target', '127.0.0.1'],
  ],
  ['--only', 'tcp_up,tcp_down,tcp_up_p4,udp,rr,crr'],
);

// Policy hooks: connections per second with no hook, a no-op hook
// answering at once, and an async one (the flow waits for JS each time).
const policy = run(
  'policy',
  [
    ['--impl', `${ours} -t none -u none -T none -U none --`, '--name', 'ours'],
    ['--impl', `${ours} -t none -u none -T none -U none --policy ${join(root, 'examples/noop.mjs')} --`, '--name', 'ours-noop'],
    ['--impl', `${ours} -t none -u none -T none -U none --policy ${join(root, 'examples/noop-async.mjs')} --`, '--name', 'ours-async'],
  ],
  ['--only', 'crr'],
);

const med = (b, impl, m) => b.summary[impl]?.[m]?.median;
const fmt = (v) => (v === undefined || v === null || Number.isNaN(v) ? '-' : Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));
const ratio = (a, b) => (a === undefined || b === undefined || !b ? undefined : a / b);
const rx = (v) => (v === undefined ? '-' : `${v.toFixed(2)}x`);

const tapMetrics = ['tcp_up', 'tcp_down', 'tcp_up_p4', 'udp_pps', 'udp_loss', 'rr_p50', 'rr_p99', 'crr', 'in_tcp_up', 'in_tcp_down'];
const rows = [];
const lines = [
  `bench ${main.date}  rounds=${rounds} seconds=${seconds}  (medians; ratios: higher-is-better metrics want >1, lower-is-better <1)`,
  '',
  `${'metric'.padEnd(12)} ${'unit'.padEnd(7)} ${'better'.padEnd(7)} ${'pasta'.padStart(9)} ${'slirp4netns'.padStart(11)} ${'ours'.padStart(9)} ${'ours/pasta'.padStart(10)} ${'ours/slirp'.padStart(10)}`,
];
for (const m of tapMetrics) {
  const info = main.metrics[m];
  if (!info) continue;
  const [p, s, o] = [med(main, 'pasta', m), med(main, 'slirp4netns', m), med(main, 'ours', m)];
  rows.push({ path: 'tap', metric: m, unit: info.unit, better: info.better, pasta: p, slirp4netns: s, ours: o, oursOverPasta: ratio(o, p), oursOverSlirp: ratio(o, s) });
  lines.push(
    `${m.padEnd(12)} ${info.unit.padEnd(7)} ${info.better.padEnd(7)} ${fmt(p).padStart(9)} ${fmt(s).padStart(11)} ${fmt(o).padStart(9)} ${rx(ratio(o, p)).padStart(10)} ${rx(ratio(o, s)).padStart(10)}`,
  );
}
lines.push('', 'splice path (namespace 127.0.0.1 -> host 127.0.0.1 through -T and -U):');
lines.push(`${'metric'.padEnd(12)} ${'unit'.padEnd(7)} ${'better'.padEnd(7)} ${'host'.padStart(9)} ${'pasta'.padStart(9)} ${'ours'.padStart(9)} ${'ours/host'.padStart(10)} ${'ours/pasta'.padStart(10)}`);
for (const m of ['tcp_up', 'tcp_down', 'tcp_up_p4', 'udp_pps', 'udp_loss', 'rr_p50', 'rr_p99', 'crr']) {
  const info = splice.metrics[m];
  if (!info) continue;
  const [h, p, o] = [med(splice, 'host', m), med(splice, 'pasta-splice', m), med(splice, 'ours-splice', m)];
  rows.push({ path: 'splice', metric: m, unit: info.unit, better: info.better, host: h, pasta: p, ours: o, oursOverHost: ratio(o, h), oursOverPasta: ratio(o, p) });
  lines.push(
    `${m.padEnd(12)} ${info.unit.padEnd(7)} ${info.better.padEnd(7)} ${fmt(h).padStart(9)} ${fmt(p).padStart(9)} ${fmt(o).padStart(9)} ${rx(ratio(o, h)).padStart(10)} ${rx(ratio(o, p)).padStart(10)}`,
  );
}
lines.push('', 'policy hooks (crr through our pasta: no hook, no-op hook, async no-op hook):');
lines.push(`${'metric'.padEnd(12)} ${'unit'.padEnd(7)} ${'none'.padStart(9)} ${'noop'.padStart(9)} ${'async'.padStart(9)} ${'noop/none'.padStart(10)} ${'async/none'.padStart(10)}`);
{
  const m = 'crr';
  const info = policy.metrics[m];
  const [n, o, a] = [med(policy, 'ours', m), med(policy, 'ours-noop', m), med(policy, 'ours-async', m)];
  rows.push({ path: 'policy', metric: m, unit: info?.unit, none: n, noop: o, async: a, noopOverNone: ratio(o, n), asyncOverNone: ratio(a, n) });
  lines.push(
    `${m.padEnd(12)} ${(info?.unit ?? '').padEnd(7)} ${fmt(n).padStart(9)} ${fmt(o).padStart(9)} ${fmt(a).padStart(9)} ${rx(ratio(o, n)).padStart(10)} ${rx(ratio(a, n)).padStart(10)}`,
  );
}
const table = lines.join('\n');
process.stdout.write(`\n${table}\n`);

const result = { date: main.date, rounds: Number(rounds), seconds: Number(seconds), machine: main.machine, rows, table, raw: { tap: main.raw_dir, splice: splice.raw_dir, policy: policy.raw_dir } };
const latest = join(outDir, 'latest.json');
writeFileSync(latest, `${JSON.stringify(result, null, 2)}\n`);
copyFileSync(latest, join(outDir, `bench-${main.date.replace(/[:]/g, '')}.json`));
process.stdout.write(`\nJSON: ${latest}\n`);
