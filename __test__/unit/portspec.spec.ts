// The -t/-u/-T/-U grammar, against every example in man passt and man
// pasta and every way to get it wrong.
import test from 'ava';
import { expand, parsePortOption, parsePortSpec, type PortSpec } from '../../ts/config/portspec.js';
import { ConfigError } from '../../ts/config/errors.js';

const spec = (s: string) => parsePortSpec('-t', s) as PortSpec;
const rule = (first: number, last: number, toFirst = first) => ({ first, last, toFirst });

// The examples shared by both man pages, with what they mean.
const examples: [string, Partial<PortSpec>][] = [
  ['22', { rules: [rule(22, 22)], excluded: [] }],
  ['22:23', { rules: [rule(22, 22, 23)], excluded: [] }],
  ['22,25', { rules: [rule(22, 22), rule(25, 25)], excluded: [] }],
  ['22-80', { rules: [rule(22, 80)], excluded: [] }],
  ['22-80:32-90', { rules: [rule(22, 80, 32)], excluded: [] }],
  ['192.0.2.1/22', { addr: '192.0.2.1', rules: [rule(22, 22)], excluded: [] }],
  ['192.0.2.1%eth0/22', { addr: '192.0.2.1', iface: 'eth0', rules: [rule(22, 22)], excluded: [] }],
  ['2000-5000,~3000-3010', { rules: [rule(2000, 5000)], excluded: [{ first: 3000, last: 3010 }] }],
  ['192.0.2.1/20-30,~25', { addr: '192.0.2.1', rules: [rule(20, 30)], excluded: [{ first: 25, last: 25 }] }],
  ['~20000-20010', { rules: [], excluded: [{ first: 20000, last: 20010 }] }],
];

for (const [text, want] of examples) {
  test(`man page example -t ${text}`, (t) => {
    t.deepEqual(spec(text), want as PortSpec);
  });
}

test('what the man page examples forward', (t) => {
  t.deepEqual([...expand(spec('22-80:32-90'))].slice(0, 2), [[22, 32], [23, 33]]);
  t.is(expand(spec('22-80:32-90')).get(80), 90);
  const m = expand(spec('192.0.2.1/20-30,~25'));
  t.deepEqual([...m.keys()], [20, 21, 22, 23, 24, 26, 27, 28, 29, 30]);
  const all = expand(spec('~20000-20010'));
  t.is(all.size, 65535 - 11);
  t.false(all.has(20005));
  t.true(all.has(19999) && all.has(1) && all.has(65535));
  t.false(expand(spec('2000-5000,~3000-3010')).has(3005));
});

test('IPv6 and interface-only binds', (t) => {
  t.deepEqual(spec('::1/8080'), { addr: '::1', rules: [rule(8080, 8080)], excluded: [] });
  t.deepEqual(spec('fd00::2%eth1/1-2'), { addr: 'fd00::2', iface: 'eth1', rules: [rule(1, 2)], excluded: [] });
  t.deepEqual(spec('%lo/443'), { iface: 'lo', rules: [rule(443, 443)], excluded: [] });
});

test('keywords and modes', (t) => {
  t.deepEqual(parsePortOption('-t', ['none'], ['all']), { mode: 'none' });
  t.deepEqual(parsePortOption('-t', ['all'], ['all']), { mode: 'all' });
  t.deepEqual(parsePortOption('-t', ['auto'], ['auto']), { mode: 'auto' });
  t.throws(() => parsePortOption('-t', ['auto'], ['all']), { message: '-t auto: not valid in this mode' });
  t.throws(() => parsePortOption('-t', ['all'], ['auto']), { message: '-t all: not valid in this mode' });
  t.throws(() => parsePortOption('-t', ['none', '22'], ['all']), { message: "-t none: can't be combined with other -t options" });
  const two = parsePortOption('-t', ['22', '127.0.0.1/80:8080'], ['all']);
  t.deepEqual(two, { mode: 'spec', specs: [spec('22'), spec('127.0.0.1/80:8080')] });
});

const errors: [string, string][] = [
  ['0', "-t 0: port 0 out of range (1-65535)"],
  ['65536', '-t 65536: port 65536 out of range (1-65535)'],
  ['80-22', '-t 80-22: range 80-22 is reversed'],
  ['1000-1010:2000-2011', '-t 1000-1010:2000-2011: range lengths differ (11 vs 12)'],
  ['22:23-24', '-t 22:23-24: range lengths differ (1 vs 2)'],
  ['22,', '-t 22,: empty item in port list'],
  [',22', '-t ,22: empty item in port list'],
  ['22,,25', '-t 22,,25: empty item in port list'],
  ['ssh', "-t ssh: 'ssh' is not a port number"],
  ['22-', "-t 22-: '' is not a port number"],
  ['-22', "-t -22: '' is not a port number"],
  ['22:', "-t 22:: empty port range"],
  ['22:23:24', "-t 22:23:24: '22:23:24' has more than one ':'"],
  ['1.2.3/22', "-t 1.2.3/22: '1.2.3' is not an IP address"],
  ['192.0.2.1%/22', "-t 192.0.2.1%/22: '%' without an interface name"],
  ['/22', "-t /22: empty address before '/'"],
  ['192.0.2.1/', '-t 192.0.2.1/: no ports given'],
  ['~', '-t ~: empty port range'],
  ['~0', '-t ~0: port 0 out of range (1-65535)'],
  ['+22', "-t +22: '+22' is not a port number"],
];

for (const [text, message] of errors) {
  test(`rejects -t ${text}`, (t) => {
    const e = t.throws(() => parsePortSpec('-t', text), { instanceOf: ConfigError });
    t.is(e?.message, message);
  });
}
