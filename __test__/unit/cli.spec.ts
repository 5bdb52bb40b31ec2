// The built executables, as a user runs them (npm test builds dist/ first).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = (name: string) => fileURLToPath(new URL(`../../dist/cli/${name}.js`, import.meta.url));
const run = (name: string, args: string[]) =>
  spawnSync(process.execPath, [bin(name), ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, TMPDIR: '/nonexistent' } });

for (const name of ['passt', 'pasta', 'qrap']) {
  test(`${name} --help prints usage and exits 0`, (t) => {
    const r = run(name, ['--help']);
    t.is(r.status, 0, r.stderr);
    t.regex(r.stdout, new RegExp(`^Usage: ${name} `));
  });
}

test('pasta -t with ranges of different lengths: one line naming -t, exit 1', (t) => {
  const r = run('pasta', ['-t', '1000-1010:2000-2011']);
  t.is(r.status, 1);
  t.is(r.stderr, 'pasta: -t 1000-1010:2000-2011: range lengths differ (11 vs 12)\n');
  t.is(r.stdout, '');
});

test('passt --frobnicate: one line naming it, exit 1', (t) => {
  const r = run('passt', ['--frobnicate']);
  t.is(r.status, 1);
  t.is(r.stderr, "passt: unrecognized option '--frobnicate'\n");
});

test('--version', (t) => {
  const r = run('passt', ['--version']);
  t.is(r.status, 0);
  t.regex(r.stdout, /^passt \(passt-ts\) \d+\.\d+\.\d+/);
});

test('qrap with no passt to connect to says so, exit 1', (t) => {
  const r = spawnSync(process.execPath, [bin('qrap'), '5', 'true'], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, QRAP_DIR: '/nonexistent' },
  });
  t.is(r.status, 1);
  t.is(r.stderr, 'qrap: no passt instance answered on /nonexistent/passt_1.socket to passt_64.socket\n');
});

test('pasta --policy-timeout abc: one line naming the option, exit 1', (t) => {
  const r = run('pasta', ['--policy', 'examples/noop.mjs', '--policy-timeout', 'abc']);
  t.is(r.status, 1);
  t.is(r.stderr, 'pasta: --policy-timeout abc: not a number\n');
});

test('pasta --policy-default maybe: one line naming the option, exit 1', (t) => {
  const r = run('pasta', ['--policy', 'examples/noop.mjs', '--policy-default', 'maybe']);
  t.is(r.status, 1);
  t.is(r.stderr, 'pasta: --policy-default maybe: not allow or reject\n');
});

test('passt --log-format xml: one line naming the option, exit 1', (t) => {
  const r = run('passt', ['--log-format', 'xml']);
  t.is(r.status, 1);
  t.is(r.stderr, "passt: --log-format xml: not 'text' or 'json'\n");
});

// Loaded before the engine starts: no namespace or socket is needed to fail.
for (const [file, why] of [
  ['/nonexistent/policy.mjs', 'no such file'],
  ['README.md', 'not a .js, .mjs, .ts or .mts file'],
] as const) {
  test(`pasta --policy ${file}: one line naming --policy, exit 1`, (t) => {
    const r = run('pasta', ['--policy', file, 'true']);
    t.is(r.status, 1);
    t.is(r.stderr, `pasta: --policy ${file}: ${why}\n`);
  });
}
