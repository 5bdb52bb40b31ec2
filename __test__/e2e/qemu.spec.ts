// passt end to end with a real qemu guest (../shared/vm/vm-run.sh), inside
// the fake host: our passt listens, the guest boots, takes its DHCPv4
// lease, SLAAC address and DHCPv6 reply from us, and pings the gateway
// (the host's loopback through the gateway mapping). Once directly on the
// socket (-netdev stream), once through our qrap (-net socket,fd=5).
import test from 'ava';
import { inFakehost } from '../helpers/fakehost.js';

const passtThenVm = (vmArgs: string, passtArgs: string, extra = '') => `
set -u
dir=$(mktemp -d)
head -c 4000000 /dev/urandom > $dir/f
echo "want $(sha256sum $dir/f | cut -d' ' -f1)"
python3 -m http.server 18080 --bind 127.0.0.1 --directory $dir >/dev/null 2>&1 &
web=$!
node dist/cli/passt.js -f ${passtArgs} > $dir/out 2>&1 &
pid=$!
for i in $(seq 100); do grep -q "bound at" $dir/out && break; sleep 0.1; done
sock=$(sed -n 's/^UNIX domain socket bound at //p' $dir/out)
../shared/vm/vm-run.sh --socket "$sock" --timeout 120 ${vmArgs} -- \\
  'ip -4 -o addr show dev $IF' 'ping -c 2 -W 2 192.0.2.1' 'ping -6 -c 2 -W 3 fd00::1' ${extra}
rc=$?
kill $pid $web; wait $pid
rm -rf $dir
exit $rc`;

test.serial('a qemu guest on our socket gets DHCPv4, SLAAC and DHCPv6, pings the gateway, fetches 4 MB over TCP', async (t) => {
  const r = await inFakehost(
    ['bash', '-c', passtThenVm('--dhcp6', '-s $dir/passt.sock', `'wget -q -O- http://192.0.2.1:18080/f | sha256sum'`)],
    { timeoutMs: 180_000 },
  );
  t.is(r.status, 0, r.stdout + r.stderr);
  t.regex(r.stderr, /guest DHCP4 rc=0 .*ip=192\.0\.2\.2 mask=24 .*router=192\.0\.2\.1/);
  t.regex(r.stderr, /guest SLAAC addr=fd00::[0-9a-f:]+\/64/);
  t.regex(r.stderr, /guest DHCP6 dhcp6 reply=REPLY addr=fd00::2 /);
  t.regex(r.stdout, /inet 192\.0\.2\.2\/24/);
  t.is(r.stdout.match(/2 packets received, 0% packet loss/g)?.length, 2);
  const want = /want ([0-9a-f]{64})/.exec(r.stdout)?.[1];
  t.regex(r.stdout, new RegExp(`^${want}  -$`, 'm'), 'the guest fetched 4 MB over TCP, intact');
  const boot = /boot_to_ready=([\d.]+)s/.exec(r.stderr);
  t.log(`boot to ready: ${boot?.[1]} s`);
});

test.serial('the same guest through our qrap (-net socket,fd=5)', async (t) => {
  const vm = `--qrap`;
  const r = await inFakehost(['bash', '-c', `export QRAP="node $PWD/dist/cli/qrap.js"; ${passtThenVm(vm, '')}`], {
    timeoutMs: 180_000,
  });
  t.is(r.status, 0, r.stdout + r.stderr);
  t.regex(r.stderr, /mode=qrap/);
  t.regex(r.stderr, /guest DHCP4 rc=0 .*ip=192\.0\.2\.2/);
  t.is(r.stdout.match(/0% packet loss/g)?.length, 2);
});
