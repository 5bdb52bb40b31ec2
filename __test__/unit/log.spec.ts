// The log file's limit (--log-size): whatever is written, the file stays
// within it, starts with a whole line, and keeps the newest lines in
// order.
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '../../ts/log.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'passt-log-'));

test('a log file stays within --log-size and keeps the newest whole lines', (t) => {
  const dir = tmp();
  const file = join(dir, 'log');
  // Older content past the limit is cut at the first line written.
  writeFileSync(file, 'old line\n'.repeat(1000));
  const log = new Logger('pasta', { file, fileSize: 4096 });
  for (let i = 0; i < 2000; i++) log.error(`line ${i} ${'x'.repeat(i % 37)}`);
  const text = readFileSync(file, 'utf8');
  rmSync(dir, { recursive: true });
  t.true(text.length <= 4096, `${text.length} bytes`);
  t.true(text.length > 2048, 'trimmed by a quarter, not emptied');
  const lines = text.split('\n');
  t.is(lines.pop(), '', 'ends with a newline');
  t.regex(lines[lines.length - 1]!, new RegExp(`^pasta: line 1999 x{${1999 % 37}}$`));
  const numbers = lines.map((l) => Number(/^pasta: line (\d+) x*$/.exec(l)?.[1]));
  t.false(numbers.some(Number.isNaN), 'every line whole');
  t.deepEqual(numbers, numbers.map((_, i) => numbers[0]! + i), 'the newest lines, in order');
});

test('a line longer than the limit is kept cut to it', (t) => {
  const dir = tmp();
  const file = join(dir, 'log');
  const log = new Logger('pasta', { file, fileSize: 4096 });
  log.error('first');
  log.error('y'.repeat(10000));
  const text = readFileSync(file, 'utf8');
  rmSync(dir, { recursive: true });
  t.is(text.length, 4096);
  t.regex(text, /^pasta: y+\n$/);
});
