// Policy modules (loading the examples and fixtures), the onPolicy
// handler built from them, the engine flags they need, runtime forward
// specs, and flow log lines. Nothing here needs the engine.
import test, { type ExecutionContext } from 'ava';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadPolicy, policyFlags, policyHandler, type OpenedFlow, type Policy } from '../../ts/policy.js';
import { nsSpecForwards, specForwards } from '../../ts/config/forwards.js';
import { formatFlow, Logger } from '../../ts/log.js';
import type { FlowInfo, FlowRecord, PolicyRequest, Verdict } from '../../ts/native.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const example = (name: string) => join(root, 'examples', name);
const fixture = (name: string) => join(root, '__test__', 'unit', 'fixtures', name);

const flow = (proto: FlowInfo['proto'], dst: string, port: number, direction: FlowInfo['direction'] = 'outbound'): FlowInfo => ({
  proto,
  direction,
  src: { addr: '10.0.2.15', port: 40000 },
  dst: { addr: dst, port },
});

const record = (over: Partial<FlowRecord> = {}): FlowRecord => ({
  ...flow('tcp', '10.0.2.2', 80),
  mapped: { src: { addr: '127.0.0.1', port: 51234 }, dst: { addr: '127.0.0.1', port: 80 } },
  bytesFromGuest: 120,
  bytesToGuest: 5000,
  startedAt: Date.UTC(2025, 0, 2, 3, 4, 5),
  durationMs: 12.4,
  end: 'closed',
  ...over,
});

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'passt-policy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Sets environment variables while `fn` runs (modules read them at load). */
async function withEnv<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return await fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

const outbound = async (p: Policy, f: FlowInfo): Promise<Verdict> => {
  if (!p.outbound) throw new Error('no outbound hook');
  return p.outbound(f);
};

// --- loadPolicy -------------------------------------------------------

test('allow-list example: default ports, ICMP allowed, the rest rejected', async (t) => {
  const p = await loadPolicy(example('allow-list.mjs'));
  t.is(await outbound(p, flow('tcp', '192.0.2.1', 443)), 'allow');
  t.is(await outbound(p, flow('udp', '192.0.2.1', 53)), 'allow');
  t.is(await outbound(p, flow('tcp', '192.0.2.1', 22)), 'reject');
  t.is(await outbound(p, flow('icmp', '192.0.2.1', 7)), 'allow');
  t.is(p.inbound, undefined, 'inbound flows are not asked about');
});

// Serial (ava runs these before the others): they change the environment.
test.serial('allow-list example: PASST_ALLOW_PORTS, and a bad port refuses to load', async (t) => {
  const dir = tempDir(t);
  // Copies under other URLs: a module is evaluated once per URL.
  const copy = (name: string) => {
    const path = join(dir, name);
    cpSync(example('allow-list.mjs'), path);
    return path;
  };
  const p = await withEnv({ PASST_ALLOW_PORTS: '22, 8080' }, () => loadPolicy(copy('a.mjs')));
  t.is(await outbound(p, flow('tcp', '192.0.2.1', 22)), 'allow');
  t.is(await outbound(p, flow('tcp', '192.0.2.1', 443)), 'reject');
  const bad = copy('b.mjs');
  const e = await t.throwsAsync(withEnv({ PASST_ALLOW_PORTS: '80,http' }, () => loadPolicy(bad)));
  t.is(e?.message, `--policy ${bad}: PASST_ALLOW_PORTS: 'http' is not a port`);
});

test.serial('redirect example: PASST_REDIRECT_FROM and _TO, IPv6 in brackets', async (t) => {
  const path = join(tempDir(t), 'r.mjs');
  cpSync(example('redirect.mjs'), path);
  const p = await withEnv({ PASST_REDIRECT_FROM: '[fd00::1]:80', PASST_REDIRECT_TO: '[::1]:8080' }, () => loadPolicy(path));
  t.deepEqual(await outbound(p, flow('tcp', 'fd00::1', 80)), { dst: { addr: '::1', port: 8080 } });
  t.is(await outbound(p, flow('tcp', '10.0.0.1', 5432)), 'allow');
});

test('redirect example: the configured destination is rewritten, the rest allowed', async (t) => {
  const p = await loadPolicy(example('redirect.mjs'));
  t.deepEqual(await outbound(p, flow('tcp', '10.0.0.1', 5432)), { dst: { addr: '127.0.0.1', port: 15432 } });
  t.is(await outbound(p, flow('tcp', '10.0.0.1', 5433)), 'allow');
  t.is(await outbound(p, flow('icmp', '10.0.0.1', 5432)), 'allow');
});

test.serial('flow-log example: one JSON line per record to PASST_FLOW_LOG', async (t) => {
  const file = join(tempDir(t), 'flows.jsonl');
  const p = await withEnv({ PASST_FLOW_LOG: file }, () => loadPolicy(example('flow-log.mjs')));
  t.truthy(p.flowEnd);
  await p.flowEnd?.([record(), record({ proto: 'udp', end: 'timeout' })]);
  const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as FlowRecord);
  t.deepEqual(lines, [record(), record({ proto: 'udp', end: 'timeout' })]);
});

test('noop examples allow, synchronously and through a promise', async (t) => {
  const sync = await loadPolicy(example('noop.mjs'));
  t.is(sync.outbound?.(flow('tcp', '192.0.2.1', 1)), 'allow');
  const async = await loadPolicy(example('noop-async.mjs'));
  const v = async.outbound?.(flow('tcp', '192.0.2.1', 1));
  t.true(v instanceof Promise);
  t.is(await v, 'allow');
});

test('a .ts policy loads through tsx', async (t) => {
  const p = await loadPolicy(fixture('typed-policy.ts'));
  t.is(await outbound(p, flow('tcp', '192.0.2.1', 25)), 'reject');
  t.is(await outbound(p, flow('tcp', '192.0.2.1', 587)), 'allow');
  t.is(await p.inbound?.({ ...flow('tcp', '10.0.2.15', 80, 'inbound'), src: { addr: '192.0.2.66', port: 1 } }), 'reject');
});

test('named exports stand in for a default', async (t) => {
  const p = await loadPolicy(fixture('named-hooks.mjs'));
  t.deepEqual(Object.keys(p), ['outbound']);
  t.is(await outbound(p, flow('udp', '192.0.2.1', 1)), 'reject');
});

test('relative paths resolve from the working directory', async (t) => {
  const cwd = process.cwd();
  process.chdir(root);
  try {
    const p = await loadPolicy('examples/noop.mjs');
    t.is(typeof p.outbound, 'function');
  } finally {
    process.chdir(cwd);
  }
});

for (const [name, file, message] of [
  ['another extension', 'policy.txt', 'not a .js, .mjs, .ts or .mts file'],
  ['a missing file', 'missing.mjs', 'no such file'],
  ['no hooks', 'no-hooks.mjs', 'exports no outbound, inbound or flowEnd hook'],
  ['a hook that is not a function', 'not-a-function.mjs', 'outbound is not a function'],
  ['a module that throws', 'throws-on-load.mjs', 'cannot read the allow list'],
] as const) {
  test(`loadPolicy refuses ${name} in one line naming --policy and the file`, async (t) => {
    const path = fixture(file);
    const e = await t.throwsAsync(loadPolicy(path));
    t.is(e?.message, `--policy ${path}: ${message}`);
  });
}

// --- policyHandler ----------------------------------------------------

const ask = (type: 'outbound' | 'inbound', f: FlowInfo = flow('tcp', '192.0.2.1', 80)): PolicyRequest => ({ type, flow: f });
const quiet = { onError: () => {} };

test('a synchronous hook answers synchronously', (t) => {
  const h = policyHandler({ outbound: (f) => (f.dst.port === 80 ? 'allow' : 'reject') }, quiet);
  t.is(h(ask('outbound')), 'allow');
  t.is(h(ask('outbound', flow('tcp', '192.0.2.1', 81))), 'reject');
});

test('an async hook answers with a promise; rewrites pass through', async (t) => {
  const rewrite: Verdict = { dst: { addr: '127.0.0.1', port: 15432 }, src: { port: 5000 } };
  const h = policyHandler({ inbound: async () => rewrite }, quiet);
  const v = h(ask('inbound'));
  t.true(v instanceof Promise);
  t.deepEqual(await v, rewrite);
});

test('the hook is called as a method of the policy', (t) => {
  const policy = {
    answer: 'reject' as const,
    outbound(this: { answer: 'reject' }) {
      return this.answer;
    },
  };
  t.is(policyHandler(policy, quiet)(ask('outbound')), 'reject');
});

test('a missing hook allows (the engine should not have asked)', (t) => {
  t.is(policyHandler({}, quiet)(ask('inbound')), 'allow');
});

test('a throwing hook throws (Rust reports it and allows the flow)', async (t) => {
  const h = policyHandler(
    {
      outbound: () => {
        throw new Error('boom');
      },
      inbound: async () => {
        throw new Error('later boom');
      },
    },
    quiet,
  );
  t.throws(() => h(ask('outbound')), { message: 'boom' });
  await t.throwsAsync(async () => h(ask('inbound')), { message: 'later boom' });
});

test('a bad answer is an error naming the hook', async (t) => {
  const bad = (v: unknown): Policy => ({ outbound: () => v as Verdict, inbound: async () => v as Verdict });
  t.throws(() => policyHandler(bad(undefined), quiet)(ask('outbound')), {
    message: "policy outbound hook returned undefined, not 'allow', 'reject' or a rewrite",
  });
  t.throws(() => policyHandler(bad(true), quiet)(ask('outbound')), { message: /returned true/ });
  t.throws(() => policyHandler(bad('deny'), quiet)(ask('outbound')), { message: /returned "deny"/ });
  t.throws(() => policyHandler(bad(['allow']), quiet)(ask('outbound')), { message: /returned \["allow"\]/ });
  await t.throwsAsync(async () => policyHandler(bad(null), quiet)(ask('inbound')), { message: /policy inbound hook returned null/ });
});

test('flow-end batches reach flowEnd and the listener; the answer is nothing', async (t) => {
  const seen: FlowRecord[][] = [];
  const heard: FlowRecord[][] = [];
  const h = policyHandler({ flowEnd: (r) => void seen.push(r) }, { onFlowEnd: (r) => heard.push(r), onError: (m) => t.fail(m) });
  const batch = [record(), record({ end: 'reset' })];
  t.is(h({ type: 'flow-end', records: batch }), undefined);
  t.deepEqual(seen, [batch]);
  t.deepEqual(heard, [batch]);
});

test('flow-open batches reach the listener', (t) => {
  const opened: OpenedFlow[][] = [];
  const h = policyHandler({}, { onFlowOpen: (f) => opened.push(f), onError: (m) => t.fail(m) });
  const f: OpenedFlow = { ...flow('udp', '192.0.2.1', 53), mapped: { src: { addr: '192.0.2.9', port: 40000 }, dst: { addr: '192.0.2.1', port: 53 } } };
  t.is(h({ type: 'flow-open', flows: [f] }), undefined);
  t.deepEqual(opened, [[f]]);
});

test('flowEnd failures, thrown or rejected, go to onError and nowhere else', async (t) => {
  const errors: string[] = [];
  const sync = policyHandler(
    {
      flowEnd: () => {
        throw new Error('disk full');
      },
    },
    { onError: (m) => errors.push(m) },
  );
  t.notThrows(() => sync({ type: 'flow-end', records: [record()] }));
  const async = policyHandler({ flowEnd: async () => Promise.reject(new Error('later')) }, { onError: (m) => errors.push(m) });
  async({ type: 'flow-end', records: [record()] });
  await new Promise((r) => setImmediate(r));
  t.deepEqual(errors, ['policy flowEnd hook: disk full', 'policy flowEnd hook: later']);
});

test("a listener's throw goes to onError, and flowEnd still runs", (t) => {
  const errors: string[] = [];
  let ran = false;
  const h = policyHandler(
    { flowEnd: () => void (ran = true) },
    {
      onFlowEnd: () => {
        throw new Error('oops');
      },
      onError: (m) => errors.push(m),
    },
  );
  h({ type: 'flow-end', records: [record()] });
  t.true(ran);
  t.deepEqual(errors, ['flow-end listener: oops']);
});

// --- policyFlags ------------------------------------------------------

test('the engine is asked only for what a hook or listener needs', (t) => {
  t.is(policyFlags({}), undefined);
  t.is(policyFlags({ policy: {}, timeoutMs: 50 }), undefined, 'a timeout alone asks nothing');
  t.deepEqual(policyFlags({ policy: { outbound: () => 'allow' } }), { outbound: true });
  t.deepEqual(policyFlags({ policy: { inbound: () => 'allow', flowEnd: () => {} }, timeoutMs: 250 }), { inbound: true, flowEnd: true, timeoutMs: 250 });
  t.deepEqual(policyFlags({ flowEvents: true }), { flowOpen: true, flowEnd: true });
  t.deepEqual(policyFlags({ flowEvents: 'end' }), { flowEnd: true });
});

// --- runtime forward specs -------------------------------------------

test('forward specs: the -t/-u grammar, as host ports', (t) => {
  t.deepEqual(specForwards('forward.add tcp', '8080:80'), [{ port: 8080, guestPort: 80 }]);
  t.deepEqual(specForwards('forward.add tcp', '127.0.0.1/22,23'), [
    { addr: '127.0.0.1', port: 22, guestPort: 22 },
    { addr: '127.0.0.1', port: 23, guestPort: 23 },
  ]);
  t.deepEqual(specForwards('forward.add udp', '%lo/5000-5001:6000-6001'), [
    { iface: 'lo', port: 5000, guestPort: 6000 },
    { iface: 'lo', port: 5001, guestPort: 6001 },
  ]);
  t.deepEqual(specForwards('forward.add tcp', 'none'), []);
  t.throws(() => specForwards('forward.add tcp', 'auto'), { message: 'forward.add tcp auto: not valid at run time' });
  t.throws(() => specForwards('forward.remove udp', '70000'), { message: 'forward.remove udp 70000: port 70000 out of range (1-65535)' });
});

test('namespace forward specs: the -T/-U grammar, as namespace ports and host ports', (t) => {
  t.deepEqual(nsSpecForwards('nsForward.add tcp', '8080:80'), [{ port: 8080, hostPort: 80 }]);
  t.deepEqual(nsSpecForwards('nsForward.add udp', '::1/53,5000-5001:6000-6001'), [
    { addr: '::1', port: 53, hostPort: 53 },
    { addr: '::1', port: 5000, hostPort: 6000 },
    { addr: '::1', port: 5001, hostPort: 6001 },
  ]);
  t.deepEqual(nsSpecForwards('nsForward.remove tcp', 'none'), []);
  t.throws(() => nsSpecForwards('nsForward.add tcp', 'auto'), { message: 'nsForward.add tcp auto: not valid at run time' });
  t.throws(() => nsSpecForwards('nsForward.add tcp', 'all'), { message: 'nsForward.add tcp all: not valid at run time' });
  t.throws(() => nsSpecForwards('nsForward.add tcp', '%lo/22'), { message: 'nsForward.add tcp %lo/22: interface binds not supported' });
  t.throws(() => nsSpecForwards('nsForward.add udp', '~22'), { message: 'nsForward.add udp ~22: exclusions alone (all ports) not supported' });
});

// --- flow log lines ---------------------------------------------------

test('a finished flow as a text line', (t) => {
  t.is(
    formatFlow(record()),
    'tcp outbound 10.0.2.15:40000 -> 10.0.2.2:80 (mapped 127.0.0.1:51234 -> 127.0.0.1:80) from-guest 120 B to-guest 5000 B 12 ms closed',
  );
  const v6 = record({
    proto: 'udp',
    direction: 'inbound',
    src: { addr: '2001:db8::1', port: 5353 },
    dst: { addr: 'fe80::1', port: 53 },
    mapped: { src: { addr: '2001:db8::1', port: 5353 }, dst: { addr: 'fe80::2', port: 53 } },
    end: 'timeout',
  });
  t.is(formatFlow(v6), 'udp inbound [2001:db8::1]:5353 -> [fe80::1]:53 (mapped [2001:db8::1]:5353 -> [fe80::2]:53) from-guest 120 B to-guest 5000 B 12 ms timeout');
});

test('log lines as JSON: one object a line, flows with the whole record', (t) => {
  const lines: string[] = [];
  const now = new Date(Date.UTC(2025, 5, 1, 12, 0, 0));
  const log = new Logger('pasta', { format: 'json', debug: true, write: (l) => lines.push(l), now: () => now });
  log.info('ARP:\n    address: 02:00:00:00:00:01');
  log.error('policy outbound hook timed out');
  log.debug('guest connected');
  log.flow(record());
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  t.is(lines.length, 4);
  t.false(lines.some((l) => l.includes('\n')));
  t.deepEqual(parsed[0], { time: '2025-06-01T12:00:00.000Z', level: 'info', prog: 'pasta', msg: 'ARP:\n    address: 02:00:00:00:00:01' });
  t.deepEqual(parsed[1], { time: '2025-06-01T12:00:00.000Z', level: 'error', prog: 'pasta', msg: 'policy outbound hook timed out' });
  t.is(parsed[2]?.level, 'debug');
  t.deepEqual(parsed[3], { time: '2025-06-01T12:00:00.000Z', level: 'flow', prog: 'pasta', msg: formatFlow(record()), ...record() });
});

test('text log: errors carry the program name, flows are written even with -q', (t) => {
  const lines: string[] = [];
  const log = new Logger('passt', { quiet: true, write: (l) => lines.push(l) });
  log.info('hidden');
  log.debug('hidden too');
  log.error('a warning');
  log.flow(record());
  t.deepEqual(lines, ['passt: a warning', formatFlow(record())]);
});
