// pasta started the way rootless podman starts it for a container: a
// namespace bound to a file (--netns PATH), in the background with a PID
// file, no port forwards, no gateway mapping, DNS through 169.254.1.1 and
// the host (host.containers.internal) at 169.254.1.2. The container
// resolves through the host's resolver, reaches a host service at the
// address it shares with the host, and pasta leaves once podman deletes
// the namespace. Inside the fake host, whose resolver is 127.0.0.53.
import test from 'ava';
import { file, inFakehost, waitPort } from '../helpers/fakehost.js';
import { dnsServer } from '../helpers/dns.js';

const service = `
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("192.0.2.2", 18170)); s.listen()
while True:
    c, a = s.accept(); c.sendall(("host service, client " + a[0] + "\\n").encode()); c.close()
`;

const script = `set -u; d=$(mktemp -d); chmod 755 $d
${file('dns.py', dnsServer)}
${file('service.py', service)}
python3 $d/dns.py 127.0.0.53 > $d/dns.log 2>&1 & s=$!
python3 $d/service.py & w=$!
${waitPort('192.0.2.2', 18170)}
touch $d/ns; unshare --net=$d/ns true
node dist/cli/pasta.js --config-net -t none -u none -T none -U none --no-map-gw --dns-forward 169.254.1.1 --map-guest-addr 169.254.1.2 --quiet --netns $d/ns --pid $d/pasta.pid
echo "started=$?"
p=$(cat $d/pasta.pid)
nsenter --net=$d/ns sh -c '
  echo "dns $(dig +short +time=2 +tries=1 @169.254.1.1 test.example A)"
  echo "tcp $(python3 -c "import socket; print(socket.create_connection((\\"169.254.1.2\\", 18170), timeout=5).makefile().readline().strip())")"'
umount $d/ns; rm $d/ns
for i in $(seq 50); do kill -0 $p 2>/dev/null || break; sleep 0.1; done
if kill -0 $p 2>/dev/null; then echo "pasta still running"; kill $p; else echo "pasta gone"; fi
kill $s $w; rm -rf $d`;

// Rootless podman runs pasta as the user: so does the second run.
for (const unprivileged of [false, true]) {
test(`a podman-style start: --netns PATH in the background, DNS at 169.254.1.1, the host at 169.254.1.2, gone with the namespace${unprivileged ? ' (as nobody)' : ''}`, async (t) => {
  const r = await inFakehost(['bash', '-c', script], { dns: '127.0.0.53', unprivileged });
  const out = r.stdout + r.stderr;
  t.regex(out, /^started=0$/m, out);
  t.regex(out, /^dns 203\.0\.113\.7$/m, out);
  t.regex(out, /^tcp host service, client 192\.0\.2\.2$/m, out);
  t.regex(out, /^pasta gone$/m, out);
});
}
