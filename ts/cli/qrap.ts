#!/usr/bin/env node
// qrap FDNUM QEMU_CMD [QEMU_ARG]...: connects to a running passt (the
// first /tmp/passt_N.socket that answers) and runs qemu with that
// connection as descriptor FDNUM (`-net socket,fd=FDNUM`), as man qrap
// says. qrap's exit status is qemu's.
import { spawn, type StdioOptions } from 'node:child_process';
import { closeSync } from 'node:fs';
import { native } from '../native.js';
import { parseQrapArgs, USAGE } from '../config/qrap-args.js';

async function main(argv: string[]): Promise<number> {
  let args;
  try {
    args = parseQrapArgs(argv);
  } catch (e) {
    process.stderr.write(`qrap: ${(e as Error).message}\n${USAGE}`);
    return 1;
  }
  if (args === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  let conn;
  try {
    conn = native().qrapConnect(process.env.QRAP_DIR);
  } catch (e) {
    process.stderr.write(`qrap: ${(e as Error).message}\n`);
    return 1;
  }
  process.stderr.write(`Connected to ${conn.path}\n`);
  const stdio: StdioOptions = ['inherit', 'inherit', 'inherit'];
  while (stdio.length < args.fd) stdio.push('ignore');
  stdio.push(conn.fd);
  const [cmd, ...rest] = args.command;
  const child = spawn(cmd!, rest, { stdio });
  closeSync(conn.fd);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => child.kill(sig));
  return new Promise((resolve) => {
    child.on('error', (e) => {
      process.stderr.write(`qrap: ${cmd}: ${e.message}\n`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

void main(process.argv.slice(2)).then((code) => process.exit(code));
