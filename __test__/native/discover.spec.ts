// Host discovery through rtnetlink, in the test "host" namespace
// (../shared/testnet/fakehost.sh: 192.0.2.2/24 via 192.0.2.1, fd00::2/64
// via fd00::1 on eth0).
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const fakehost = fileURLToPath(new URL('../../../shared/testnet/fakehost.sh', import.meta.url));
const probe = `
  import { native } from './ts/native.ts';
  console.log(JSON.stringify(native().hostDiscover(JSON.parse(process.argv[1] ?? '{}'))));
`;

function discover(options: object = {}) {
  const r = spawnSync(fakehost, ['--', process.execPath, '--import=tsx', '--input-type=module', '-e', probe, JSON.stringify(options)], {
    encoding: 'utf8',
    timeout: 30_000,
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
  });
  if (r.status !== 0) throw new Error(`discovery failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('finds the default-route interface, its addresses and gateways', (t) => {
  const info = discover();
  t.is(info.v4.ifname, 'eth0');
  t.deepEqual(info.v4.addrs, [{ addr: '192.0.2.2', prefixLen: 24 }]);
  t.is(info.v4.gateway, '192.0.2.1');
  t.regex(info.v4.mac, /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  t.true(info.v4.mtu >= 1280);
  t.is(info.v6.ifname, 'eth0');
  t.deepEqual(info.v6.addrs, [{ addr: 'fd00::2', prefixLen: 64 }]);
  t.is(info.v6.gateway, 'fd00::1');
  t.true(info.v6.linkLocal.every((a: string) => a.startsWith('fe80:')));
});

test('a named interface without a default route still gives its addresses', (t) => {
  const info = discover({ ifname4: 'lo' });
  t.is(info.v4.ifname, 'lo');
  t.deepEqual(info.v4.addrs, []);
  t.is(info.v4.gateway, null);
});
