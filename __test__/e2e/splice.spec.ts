// pasta's -T (namespace to host) through the splice path, inside the fake
// host: a client in the namespace downloads and uploads files from a
// server on the host's loopback, over IPv4 and IPv6; a -T port with
// nothing behind it on the host resets the client at once.
import test from 'ava';
import { inFakehost } from '../helpers/fakehost.js';
import { httpServer } from '../helpers/http.js';

function script(mib: number): string {
  return `
set -u
d=$(mktemp -d); chmod 755 $d
cat > $d/srv.py <<'PY'
${httpServer}
PY
head -c ${mib * 1024 * 1024} /dev/urandom > $d/f
echo "want $(sha256sum $d/f | cut -d' ' -f1)"
python3 $d/srv.py 9090 $d 127.0.0.1 ::1 > $d/log 2>&1 & s=$!
for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:9090/ && curl -s -o /dev/null 'http://[::1]:9090/' && break; sleep 0.1; done
timeout 170 node dist/cli/pasta.js --config-net -f --stats -T 19090:9090 -T 19091:9091 -- sh -c "
  echo down4 \\$(curl -sS -m 60 http://127.0.0.1:19090/f | sha256sum | cut -d' ' -f1)
  echo up4 \\$(curl -sS -m 60 -T $d/f http://127.0.0.1:19090/up)
  echo down6 \\$(curl -sS -m 60 'http://[::1]:19090/f' | sha256sum | cut -d' ' -f1)
  echo up6 \\$(curl -sS -m 60 -T $d/f 'http://[::1]:19090/up')
  curl -sS -m 10 http://127.0.0.1:19091/ 2>&1 | head -c 200; echo" 2>&1
echo "pasta=$?"
kill $s; wait $s 2>/dev/null
cat $d/log
rm -rf $d`;
}

for (const unprivileged of [false, true]) {
  const mib = unprivileged ? 20 : 100;
  test(`-T: a client in the namespace downloads and uploads ${mib} MiB from the host's loopback over IPv4 and IPv6, spliced${unprivileged ? ' (as nobody)' : ''}`, async (t) => {
    const r = await inFakehost(['bash', '-c', script(mib)], { unprivileged, timeoutMs: 200_000 });
    const out = r.stdout + r.stderr;
    const want = /want ([0-9a-f]{64})/.exec(r.stdout)?.[1];
    t.truthy(want, out);
    for (const k of ['down4', 'up4', 'down6', 'up6']) {
      t.is(new RegExp(`${k} ([0-9a-f]{64})`).exec(out)?.[1], want, `${k}\n${out}`);
    }
    // Nothing on the host's 9091: the namespace's client is reset, not
    // left waiting.
    t.regex(out, /curl: \((7|56)\)/, out);
    t.regex(out, /pasta=0/, out);
    t.true(Number(/flow errors (\d+)/.exec(out)?.[1]) >= 1, out);
    // The host's server saw its clients on its own loopback.
    t.regex(out, /client 127\.0\.0\.1/, out);
    t.regex(out, /client ::1/, out);
  });
}

// The other way: a host client on the loopback reaches, through -t, a
// server that listens only on the namespace's loopback, which no frame
// from the tap could reach.
test('-t: a host loopback client is spliced to a server on the namespace loopback, 100 MiB each way over IPv4 and IPv6', async (t) => {
  const r = await inFakehost(
    [
      'bash',
      '-c',
      `
set -u
d=$(mktemp -d); chmod 755 $d
cat > $d/srv.py <<'PY'
${httpServer}
PY
head -c ${100 * 1024 * 1024} /dev/urandom > $d/f
echo "want $(sha256sum $d/f | cut -d' ' -f1)"
timeout 170 node dist/cli/pasta.js --config-net -t 18090:9090 -- sh -c "
  python3 $d/srv.py 9090 $d 127.0.0.1 ::1 > $d/log 2>&1 & s=\\$!
  for i in \\$(seq 1600); do [ -e $d/done ] && break; sleep 0.1; done
  kill \\$s" &
p=$!
for i in $(seq 100); do curl -s -o /dev/null -m 2 http://127.0.0.1:18090/ && curl -s -o /dev/null -m 2 'http://[::1]:18090/' && break; sleep 0.1; done
echo "down4 $(curl -sS -m 60 http://127.0.0.1:18090/f | sha256sum | cut -d' ' -f1)"
echo "up4 $(curl -sS -m 60 -T $d/f http://127.0.0.1:18090/up)"
echo "down6 $(curl -sS -m 60 'http://[::1]:18090/f' | sha256sum | cut -d' ' -f1)"
echo "up6 $(curl -sS -m 60 -T $d/f 'http://[::1]:18090/up')"
touch $d/done; wait $p; echo "pasta=$?"
cat $d/log
rm -rf $d`,
    ],
    { timeoutMs: 200_000 },
  );
  const out = r.stdout + r.stderr;
  const want = /want ([0-9a-f]{64})/.exec(r.stdout)?.[1];
  t.truthy(want, out);
  for (const k of ['down4', 'up4', 'down6', 'up6']) {
    t.is(new RegExp(`${k} ([0-9a-f]{64})`).exec(out)?.[1], want, `${k}\n${out}`);
  }
  t.regex(out, /client 127\.0\.0\.1/, out);
  t.regex(out, /client ::1/, out);
  t.regex(out, /pasta=0/, out);
});
