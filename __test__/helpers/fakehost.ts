// Runs commands inside ../shared/testnet/fakehost.sh, the fake "host"
// namespace every end-to-end test uses (192.0.2.2/24 via 192.0.2.1,
// fd00::2/64 via fd00::1; nothing leaves it), optionally as nobody.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const fakehostSh = fileURLToPath(new URL('../../../shared/testnet/fakehost.sh', import.meta.url));

// A bash snippet: a second namespace behind a veth (r0 here, r1 there),
// 198.51.100.2 and 2001:db8:1::2, for a client that is neither loopback
// nor the host itself; `rx CMD` runs there, `$r` is its holder's PID.
export const remoteNs = `
unshare --net sleep 300 & r=$!
for i in $(seq 50); do [ "$(readlink /proc/$r/ns/net)" != "$(readlink /proc/self/ns/net)" ] && break; sleep 0.05; done
ip link add r0 type veth peer name r1
ip link set r1 netns $r
ip addr add 198.51.100.1/24 dev r0
ip -6 addr add 2001:db8:1::1/64 dev r0 nodad
ip link set r0 up
rx() { nsenter --net=/proc/$r/ns/net "$@"; }
rx sh -c 'ip link set lo up; ip addr add 198.51.100.2/24 dev r1; ip -6 addr add 2001:db8:1::2/64 dev r1 nodad; ip link set r1 up'
`;

/** A bash snippet writing `text` to $d/NAME (a quoted heredoc). */
export const file = (name: string, text: string) => `cat > $d/${name} <<'EOF_${name.replace(/\W/g, '_')}'
${text}
EOF_${name.replace(/\W/g, '_')}
`;

/** A bash snippet waiting (5 s at most) until host:port accepts. */
export const waitPort = (host: string, port: number) =>
  `for i in $(seq 50); do python3 -c 'import socket; socket.create_connection(("${host}", ${port}))' 2>/dev/null && break; sleep 0.1; done`;

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs argv in a fresh fake host (whose resolv.conf names `dns`, if
 * given); killed after `timeoutMs`, with everything it started (its
 * process group: a leftover holding its output open would otherwise keep
 * the run from ever ending). */
export function inFakehost(argv: string[], opts: { unprivileged?: boolean; timeoutMs?: number; dns?: string } = {}): Promise<Run> {
  const prefix = opts.unprivileged
    ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', fakehostSh]
    : [fakehostSh];
  const [cmd, ...args] = [...prefix, ...(opts.dns ? ['--dns', opts.dns] : []), '--', ...argv];
  return new Promise((resolve) => {
    const child = spawn(cmd!, args, { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\ninFakehost: killed after ${opts.timeoutMs ?? 60_000} ms\n`;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
      // Whatever escaped the group may still hold the pipes: stop reading.
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
      }, 2000).unref();
    }, opts.timeoutMs ?? 60_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

export interface PastaRun extends Run {
  result: { status: number; stats: Record<string, unknown>; plan: unknown } | undefined;
}

/** Starts pasta (programmatic API) in a fake host with `command` in the namespace. */
export async function pastaInFakehost(
  options: Record<string, unknown>,
  script: string,
  opts: { unprivileged?: boolean; timeoutMs?: number } = {},
): Promise<PastaRun> {
  const r = await inFakehost(
    [process.execPath, '--import=tsx', '__test__/helpers/run-pasta.ts', JSON.stringify({ ...options, command: ['sh', '-c', script] })],
    opts,
  );
  const line = r.stderr.split('\n').find((l) => l.startsWith('PASTA-RESULT '));
  return { ...r, result: line ? JSON.parse(line.slice('PASTA-RESULT '.length)) : undefined };
}
