// Shared by the executables: parse, print help/version or a one-line
// error (exit 1), else run.
import { readFileSync } from 'node:fs';
import { ConfigError, parseArgs } from '../config/normalize.js';
import { usage, type Mode } from '../config/options.js';
import { launch } from '../launch.js';

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(mode: Mode, argv: string[]): Promise<number> {
  try {
    const parsed = parseArgs(mode, argv);
    if (parsed.action === 'help') {
      process.stdout.write(`${usage(mode)}\n`);
      return 0;
    }
    if (parsed.action === 'version') {
      process.stdout.write(`${mode} (passt-ts) ${version()}\n`);
      return 0;
    }
    return await launch(parsed.config);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`${mode}: ${msg.split('\n')[0]}\n`);
    if (!(e instanceof ConfigError) && process.env.PASST_TS_TRACE) console.error(e);
    return 1;
  }
}

export function run(mode: Mode): void {
  void main(mode, process.argv.slice(2)).then((code) => process.exit(code));
}
