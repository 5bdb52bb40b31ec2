// Messages for people, and for machines with --log-format json: to
// standard error unless -q, or to -l FILE. Finished flows (--log-flows)
// are log lines too, so one stream carries everything in one format.
// The file never grows past its limit (--log-size, 1 MiB by default, as
// man pasta says it is mandatory): when a line would not fit, the oldest
// lines go, a quarter of the limit at once so that this is rare, and the
// file still starts with a whole line.
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import type { EngineStats, Endpoint, FlowRecord } from './native.js';

export type LogFormat = 'text' | 'json';
type Level = 'info' | 'error' | 'debug' | 'flow';

export interface LoggerOptions {
  quiet?: boolean;
  debug?: boolean;
  file?: string;
  format?: LogFormat;
  /** The file's limit in bytes (default LOG_SIZE). */
  fileSize?: number;
  /** Where lines go instead of the file or standard error (tests). */
  write?: (line: string) => void;
  now?: () => Date;
}

function endpoint(e: Endpoint): string {
  return e.addr.includes(':') ? `[${e.addr}]:${e.port}` : `${e.addr}:${e.port}`;
}

/** One finished flow on one line: who talked to whom, through which
 * host addresses, how much each way, how long, and how it ended. */
export function formatFlow(r: FlowRecord): string {
  return (
    `${r.proto} ${r.direction} ${endpoint(r.src)} -> ${endpoint(r.dst)} ` +
    `(mapped ${endpoint(r.mapped.src)} -> ${endpoint(r.mapped.dst)}) ` +
    `from-guest ${r.bytesFromGuest} B to-guest ${r.bytesToGuest} B ${Math.round(r.durationMs)} ms ${r.end}`
  );
}

/** --log-size: its default, and the least it takes. */
export const LOG_SIZE = 1 << 20;
export const LOG_SIZE_MIN = 4096;

/** Keeps the newest `keep` bytes of `file` from a line's start; its new
 * size. */
function dropOldest(file: string, keep: number): number {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch {
    return 0;
  }
  let tail = data.subarray(Math.max(0, data.length - Math.max(0, keep)));
  if (tail.length < data.length) {
    const nl = tail.indexOf(10);
    tail = nl < 0 ? tail.subarray(tail.length) : tail.subarray(nl + 1);
  }
  writeFileSync(file, tail);
  return tail.length;
}

export class Logger {
  /** The log file's size, once known (undefined before its first line). */
  #size?: number;

  constructor(
    private readonly prog: string,
    private readonly opts: LoggerOptions = {},
  ) {}

  #write(line: string): void {
    if (this.opts.write) this.opts.write(line);
    else if (this.opts.file) this.#append(this.opts.file, `${line}\n`);
    else process.stderr.write(`${line}\n`);
  }

  #append(file: string, text: string): void {
    const limit = this.opts.fileSize ?? LOG_SIZE;
    let bytes = Buffer.from(text);
    // A line longer than the whole file would be: its start, cut.
    if (bytes.length > limit) bytes = Buffer.concat([bytes.subarray(0, limit - 1), Buffer.from('\n')]);
    if (this.#size === undefined) {
      try {
        this.#size = statSync(file).size;
      } catch {
        this.#size = 0;
      }
    }
    if (this.#size + bytes.length > limit) this.#size = dropOldest(file, limit - bytes.length - Math.floor(limit / 4));
    appendFileSync(file, bytes);
    this.#size += bytes.length;
  }

  /** Text: `prefixed` lines carry the program's name, as passt's do for
   * errors. JSON: one object a line, `fields` spread after the message. */
  #emit(level: Level, msg: string, prefixed: boolean, fields: object = {}): void {
    if (this.opts.format !== 'json') {
      this.#write(prefixed ? `${this.prog}: ${msg}` : msg);
      return;
    }
    const time = (this.opts.now?.() ?? new Date()).toISOString();
    this.#write(JSON.stringify({ time, level, prog: this.prog, msg, ...fields }));
  }

  info(msg: string): void {
    if (!this.opts.quiet) this.#emit('info', msg, false);
  }

  debug(msg: string): void {
    if (this.opts.debug) this.#emit('debug', msg, true);
  }

  error(msg: string): void {
    this.#emit('error', msg, true);
  }

  /** Asked for with --log-flows, so written even with -q. */
  flow(record: FlowRecord): void {
    this.#emit('flow', formatFlow(record), false, record);
  }

  /** --stats: counters on exit. Text goes to standard error whatever -l
   * says (as it always has); JSON follows the log with the counters as
   * fields. */
  stats(msg: string, stats: EngineStats): void {
    if (this.opts.format === 'json') this.#emit('info', msg, true, { stats });
    else if (this.opts.write) this.opts.write(`${this.prog}: ${msg}`);
    else process.stderr.write(`${this.prog}: ${msg}\n`);
  }
}
