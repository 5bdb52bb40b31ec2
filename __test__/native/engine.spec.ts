// The engine thread, started and stopped from JS.
import test from 'ava';
import { readdirSync } from 'node:fs';
import { native } from '../../ts/native.js';

const openFds = () => readdirSync('/proc/self/fd').length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test.serial('the engine ticks every 20 ms and stops within 1 s, closing its fds', async (t) => {
  const before = openFds();
  const handle = native().engineStart();
  t.true(openFds() > before, 'the engine opened descriptors');
  const deadline = Date.now() + 5000;
  while (native().engineStats(handle).ticks < 5 && Date.now() < deadline) await sleep(20);
  const stats = native().engineStats(handle);
  t.true(stats.running);
  t.true(stats.ticks >= 5, `ticks: ${stats.ticks}`);
  t.is(stats.badTokens, 0);

  const t0 = process.hrtime.bigint();
  native().engineStop(handle);
  const stopMs = Number(process.hrtime.bigint() - t0) / 1e6;
  t.true(stopMs < 1000, `stop took ${stopMs} ms`);
  t.is(openFds(), before, 'every descriptor the engine opened is closed');
  t.false(native().engineStats(handle).running);
  t.notThrows(() => native().engineStop(handle), 'stopping twice is harmless');
});

test.serial('several engines run side by side', (t) => {
  const before = openFds();
  const handles = Array.from({ length: 4 }, () => native().engineStart());
  for (const h of handles) t.true(native().engineStats(h).running);
  for (const h of handles) native().engineStop(h);
  t.is(openFds(), before);
});

test('a bad handle is a JS error, not a crash', (t) => {
  t.throws(() => native().engineStop({} as never), { message: /expected a handle/ });
});
