// The Node-API bridge's threadsafe functions, driven from a Rust thread.
import test from 'ava';
import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { native, type Plain, type TsfnSelfTestReport } from '../../ts/native.js';

function selfTest(
  fn: (i: number) => Plain | Promise<Plain>,
  options: { count: number },
): Promise<TsfnSelfTestReport> {
  return new Promise((resolve) => native().tsfnSelfTest(fn, options, resolve));
}

test('100,000 calls from a Rust thread arrive complete and in order', async (t) => {
  const N = 100_000;
  const seen: number[] = [];
  const report = await selfTest((i) => {
    seen.push(i);
    return i * 2;
  }, { count: N });
  t.is(seen.length, N);
  t.true(seen.every((v, k) => v === k), 'JS saw the calls in order');
  t.is(report.calls, N);
  t.is(report.replies, N);
  t.is(report.outOfOrder, 0);
  t.is(report.errorCount, 0);
  t.is(report.sum, N * (N - 1));
});

test('the Rust thread keeps calling while a JS callback blocks for 500 ms', async (t) => {
  // The callback starts the Rust thread, then holds the JS thread for
  // 500 ms: every call the thread makes meanwhile can only be queued.
  const { report, blockedFrom, blockedUntil } = await new Promise<{
    report: Promise<TsfnSelfTestReport>; blockedFrom: number; blockedUntil: number;
  }>((resolve) => setImmediate(() => {
    const blockedFrom = Date.now();
    const report = selfTest(() => 1, { count: 1000 });
    while (Date.now() - blockedFrom < 500) {
      // Busy: the JS thread runs nothing else meanwhile.
    }
    resolve({ report, blockedFrom, blockedUntil: Date.now() });
  }));
  const r = await report;
  t.is(r.replies, 1000);
  t.is(r.repliesAtLastCall, 0, 'no reply had come back: the calls were only queued');
  t.true(r.lastCallAt >= blockedFrom && r.lastCallAt <= blockedUntil,
    `all 1,000 calls made while JS was blocked (${blockedFrom}..${blockedUntil}, last call ${r.lastCallAt})`);
  t.is(r.outOfOrder, 0);
});

test('a callback that throws is an error reply, not a crash', async (t) => {
  const report = await selfTest((i) => {
    if (i % 10 === 3) throw new Error(`boom ${i}`);
    return i;
  }, { count: 20 });
  t.is(report.replies, 20);
  t.is(report.errorCount, 2);
  t.deepEqual(report.errors, [
    { index: 3, message: 'Error: boom 3' },
    { index: 13, message: 'Error: boom 13' },
  ]);
  t.is(report.sum, (0 + 19) * 20 / 2 - 3 - 13);
});

test('async callbacks: resolved values and rejections come back', async (t) => {
  const report = await selfTest(async (i) => {
    await new Promise((r) => setTimeout(r, 1));
    if (i === 4) throw new Error('async boom');
    return i;
  }, { count: 10 });
  t.is(report.replies, 10);
  t.is(report.errorCount, 1);
  t.deepEqual(report.errors, [{ index: 4, message: 'Error: async boom' }]);
  t.is(report.sum, 45 - 4);
});

test('the addon unloads cleanly from workers, even with calls in flight', async (t) => {
  const worker = fileURLToPath(new URL('./helpers/tsfn-worker.mjs', import.meta.url));
  for (let round = 0; round < 3; round++) {
    const w = new Worker(worker, { workerData: { count: 10_000 } });
    const report = await new Promise<TsfnSelfTestReport>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    t.is(report.replies, 10_000);
    await w.terminate();
  }
  // Terminated while a Rust thread is still calling into it.
  const w = new Worker(worker, { workerData: { count: 1_000_000, noWait: true } });
  await new Promise((r) => w.once('online', r));
  await new Promise((r) => setTimeout(r, 50));
  await w.terminate();
  // The worker's Rust thread goes on calling its dead function for a while;
  // the process must survive that and keep working.
  await new Promise((r) => setTimeout(r, 500));
  const report = await selfTest((i) => i, { count: 100 });
  t.is(report.replies, 100);
});

test('a process that used the addon exits normally', (t) => {
  const script = fileURLToPath(new URL('./helpers/tsfn-worker.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [script, '5000'], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.signal, null, r.stderr);
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /replies=5000/);
});
