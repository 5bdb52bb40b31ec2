// passt's socket life cycle, with a peer speaking qemu's framing at layer
// 2 (an ARP request for the gateway, answered by our ARP): a new guest may
// connect after the old one leaves; -1 exits when the guest leaves; --fd
// serves an inherited, connected socket.
import test from 'ava';
import { inFakehost } from '../helpers/fakehost.js';

const peer = async (mode: string) => {
  const r = await inFakehost(['node', '__test__/helpers/qemu-peer.mjs', mode], { timeoutMs: 30_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return { r, result: JSON.parse(line || '{}') };
};

test('a second guest is served after the first leaves; SIGTERM stops passt with status 0', async (t) => {
  const { r, result } = await peer('reconnect');
  t.deepEqual(result, { first: true, second: true, exit: 0 }, r.stderr);
});

test('-1/--one-off: passt exits when the guest leaves, and removes its socket', async (t) => {
  const { r, result } = await peer('one-off');
  t.deepEqual(result, { first: true, exit: 0, socketRemoved: true }, r.stderr);
});

test('-F/--fd: an inherited connected socket is served, and its end ends passt', async (t) => {
  const { r, result } = await peer('fd');
  t.deepEqual(result, { first: true, exit: 0 }, r.stderr);
});
