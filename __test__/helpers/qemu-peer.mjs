// Plays a qemu guest at layer 2 on passt's socket, inside the fake host:
// sends an ARP request for the gateway in qemu's framing and waits for
// the reply. Used to check socket life cycles without booting a VM.
// Usage: node qemu-peer.mjs MODE   (prints one JSON line)
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { mkdtempSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const GUEST_MAC = Buffer.from([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
const arpRequest = () => {
  const f = Buffer.concat([
    Buffer.alloc(6, 0xff), GUEST_MAC, Buffer.from([0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]),
    GUEST_MAC, Buffer.from([192, 0, 2, 2]), Buffer.alloc(6), Buffer.from([192, 0, 2, 1]),
  ]);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(f.length);
  return Buffer.concat([len, f]);
};
/** True if `data` holds an ARP reply "192.0.2.1 is-at ..." to us. */
const isArpReply = (data) =>
  data.length >= 4 + 42 && data.readUInt16BE(4 + 12) === 0x0806 && data.readUInt16BE(4 + 20) === 2 &&
  data.subarray(4 + 28, 4 + 32).equals(Buffer.from([192, 0, 2, 1]));

function ask(stream) {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => resolve(false), 3000);
    stream.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (isArpReply(buf)) { clearTimeout(timer); resolve(true); }
    });
    stream.write(arpRequest());
  });
}

const connectTo = (path) => new Promise((resolve, reject) => {
  const s = connect(path, () => resolve(s));
  s.on('error', reject);
});
const exited = (child) => new Promise((resolve) => child.on('exit', (code) => resolve(code)));
// passt never outlives this script, whatever ends it.
let started;
process.on('exit', () => started?.exitCode === null && started.kill('SIGKILL'));
const passt = (args, stdio = ['ignore', 'ignore', 'inherit']) =>
  (started = spawn(process.execPath, ['dist/cli/passt.js', '-f', '-q', ...args], { stdio }));

const mode = process.argv[2];
const dir = mkdtempSync('/tmp/qemu-peer-');
const path = join(dir, 'passt.sock');
const result = {};
if (mode === 'reconnect' || mode === 'one-off') {
  const child = passt(mode === 'one-off' ? ['-1', '-s', path] : ['-s', path]);
  // A loaded machine may take seconds to start node and the addon.
  for (let i = 0; i < 400 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 50));
  const a = await connectTo(path);
  result.first = await ask(a);
  a.destroy();
  if (mode === 'one-off') {
    const code = await Promise.race([exited(child), new Promise((r) => setTimeout(() => r('still running'), 3000))]);
    result.exit = code;
    result.socketRemoved = !existsSync(path);
  } else {
    await new Promise((r) => setTimeout(r, 200));
    const b = await connectTo(path);
    result.second = await ask(b);
    b.destroy();
    child.kill('SIGTERM');
    result.exit = await exited(child);
  }
} else if (mode === 'fd') {
  // A UNIX socketpair as the child's descriptor 3 (libuv makes 'pipe'
  // stdio a socketpair): passt --fd 3 speaks qemu's framing on it.
  const child = passt(['-F', '3'], ['ignore', 'ignore', 'inherit', 'pipe']);
  result.first = await ask(child.stdio[3]);
  child.stdio[3].destroy();
  result.exit = await exited(child);
}
console.log(JSON.stringify(result));
process.exit(0);
