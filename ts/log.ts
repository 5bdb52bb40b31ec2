// Messages for people: to standard error unless -q, or to -l FILE.
import { appendFileSync } from 'node:fs';

export class Logger {
  constructor(
    private readonly prog: string,
    private readonly opts: { quiet?: boolean; debug?: boolean; file?: string } = {},
  ) {}

  #write(line: string): void {
    if (this.opts.file) appendFileSync(this.opts.file, `${line}\n`);
    else process.stderr.write(`${line}\n`);
  }

  info(msg: string): void {
    if (!this.opts.quiet) this.#write(msg);
  }

  debug(msg: string): void {
    if (this.opts.debug) this.#write(`${this.prog}: ${msg}`);
  }

  error(msg: string): void {
    this.#write(`${this.prog}: ${msg}`);
  }
}
