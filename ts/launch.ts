// Runs a validated Config: passt (qemu socket) or pasta (namespace), in
// the foreground or, as passt and pasta do by default, in the background
// once ready. Returns the process exit status.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { startPasst, startPasta, type CommonOptions, type Handle } from './api.js';
import { hostForwards, nsForwards } from './config/forwards.js';
import type { Config } from './config/types.js';
import type { EngineStats } from './native.js';
import { Logger } from './log.js';

/** Set in the environment of the background copy of ourselves. */
const DAEMON_ENV = 'PASST_TS_DAEMON';

function common(c: Config): CommonOptions {
  const { dhcpDns, dhcpSearch, dns, search, ...guest } = c.guest;
  const o: CommonOptions = { ...guest };
  // --no-dhcp-dns, --no-dhcp-search (passt), or no --dhcp-dns,
  // --dhcp-search (pasta): the guest is told none (DNS forwarding still
  // follows the resolvers); else -D/-S or the host's.
  if (dns !== undefined) o.dns = dns;
  if (!dhcpDns) o.noDhcpDns = true;
  if (!dhcpSearch) o.search = [];
  else if (search !== undefined) o.search = search;
  for (const k of ['interface', 'outboundIf4', 'outboundIf6', 'pcap'] as const) {
    const v = c[k];
    if (v !== undefined) o[k] = v;
  }
  const tcp = hostForwards(c.forward.tcp);
  if (tcp) o.tcpForwards = tcp;
  const udp = hostForwards(c.forward.udp);
  if (udp) o.udpForwards = udp;
  if (c.log.trace) o.trace = true;
  return o;
}

function describe(log: Logger, inst: Handle): void {
  const g = inst.plan.guest;
  log.info(`Outbound interface: ${inst.plan.ifname4 ?? inst.plan.ifname6 ?? 'none'}`);
  log.info(`ARP:\n    address: ${g.ourMac}`);
  if (g.v4) {
    log.info(`DHCP:\n    assign: ${g.v4.addr}\n    mask: ${g.v4.prefixLen}\n    router: ${g.v4.gateway}`);
    if (g.v4.dns.length) log.info(`    DNS: ${g.v4.dns.join(' ')}`);
  }
  if (g.v6) log.info(`NDP/DHCPv6:\n    assign: ${g.v6.addr}\n    router: ${g.v6.routerLl}`);
  if (g.search.length) log.info(`    search: ${g.search.join(' ')}`);
}

function report(log: Logger, c: Config, stats: EngineStats): void {
  if (!c.log.stats && !c.log.debug) return;
  const drops = Object.entries(stats.drops).map(([k, v]) => `${k}=${v}`).join(' ') || 'none';
  log.stats(
    `frames in ${stats.framesIn}, out ${stats.framesOut}, tx dropped ${stats.txDropped}, ` +
      `flow errors ${stats.flowErrors}; dropped: ${drops}` +
      (stats.policy.asked > 0 || stats.policy.errors > 0
        ? `; policy asked ${stats.policy.asked}, rejected ${stats.policy.rejected}, rewritten ${stats.policy.rewritten}, ` +
          `timeouts ${stats.policy.timeouts}, errors ${stats.policy.errors}, ` +
          `mean wait ${Math.round(stats.policy.waitUs / Math.max(1, stats.policy.asked - stats.policy.timeouts))} us`
        : ''),
    stats,
  );
}

/** Re-runs us in the background; returns once the copy is ready (it
 * closes its stdout) with 0, or with its status if it failed. */
function daemonize(log: Logger): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, [DAEMON_ENV]: '1' },
  });
  return new Promise((resolve) => {
    child.stdout.pipe(process.stdout, { end: false });
    child.stdout.on('end', () => {
      child.unref();
      resolve(0);
    });
    child.on('exit', (code) => resolve(code ?? 1));
    child.on('error', (e) => {
      log.error(`cannot start in background: ${e.message}`);
      resolve(1);
    });
  });
}

/** In the background copy: the parent may go now. */
function ready(c: Config): void {
  if (c.pidFile) writeFileSync(c.pidFile, `${process.pid}\n`);
  if (process.env[DAEMON_ENV] === '1') process.stdout.end();
}

/** What cost a flow but not the engine goes to the log, even with -q
 * (policy timeouts and hook errors among them); so do finished flows
 * with --log-flows, and every frame with --trace. */
function watch(log: Logger, c: Config, inst: Handle): void {
  inst.on('warning', (e) => log.error(e.message));
  if (c.log.flows) inst.on('flow-end', (r) => log.flow(r));
  if (c.log.trace) inst.on('trace', (e) => e.lines.forEach((l) => log.debug(l)));
}

/** --policy, --policy-timeout, --log-flows as API options. The module is
 * loaded here, in the copy that runs the engine: its load errors are one
 * line naming --policy. */
async function hooks(c: Config): Promise<Pick<CommonOptions, 'policyFile' | 'policyTimeoutMs' | 'policyDefault' | 'flowEvents'>> {
  return {
    // Decisions in a worker thread: a flow waits microseconds, not tens.
    ...(c.policy ? { policyFile: c.policy.file } : {}),
    ...(c.policy?.timeoutMs !== undefined ? { policyTimeoutMs: c.policy.timeoutMs } : {}),
    ...(c.policy?.default !== undefined ? { policyDefault: c.policy.default } : {}),
    ...(c.log.flows ? { flowEvents: 'end' as const } : {}),
  };
}

function stopOnSignals(inst: Handle): void {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => inst.stop());
  }
}

export async function launch(c: Config): Promise<number> {
  const log = new Logger(c.mode, {
    quiet: c.log.quiet,
    debug: c.log.debug,
    format: c.log.format,
    ...(c.log.file ? { file: c.log.file } : {}),
    ...(c.log.size !== undefined ? { fileSize: c.log.size } : {}),
  });
  const background = !c.foreground && process.env[DAEMON_ENV] !== '1';
  if (c.mode === 'passt') {
    if (background) return daemonize(log);
    const inst = await startPasst({
      ...common(c),
      ...(await hooks(c)),
      oneOff: c.passt.oneOff,
      ...(c.passt.socket !== undefined ? { socket: c.passt.socket } : {}),
      ...(c.passt.fd !== undefined ? { fd: c.passt.fd } : {}),
    });
    describe(log, inst);
    if (inst.socketPath) {
      process.stdout.write(
        `UNIX domain socket bound at ${inst.socketPath}\n\n` +
          `You can now start qemu (>= 7.2, with socket-based networking):\n` +
          `    qemu-system-x86_64 ... -device virtio-net-pci,netdev=s -netdev stream,id=s,server=off,addr.type=unix,addr.path=${inst.socketPath}\n` +
          `or qrap, for earlier qemu versions:\n` +
          `    qrap 5 qemu-system-x86_64 ... -net socket,fd=5 -net nic,model=virtio\n`,
      );
    }
    watch(log, c, inst);
    inst.engine.on('guest-connected', () => log.debug('guest connected'));
    inst.engine.on('guest-disconnected', (e: { reason: string }) => log.debug(`guest disconnected: ${e.reason}`));
    stopOnSignals(inst);
    ready(c);
    const reason = await inst.engine.done;
    report(log, c, inst.stats());
    log.debug(`exiting: ${reason}`);
    return 0;
  }

  const t = c.pasta.target;
  if (background && t.kind !== 'command') return daemonize(log);
  const inst = await startPasta({
    ...common(c),
    ...(await hooks(c)),
    configNet: c.pasta.configNet,
    ...(t.kind === 'command' ? { command: t.argv } : {}),
    ...(t.kind === 'pid' ? { pid: t.pid } : {}),
    ...(t.kind === 'netns' ? { netns: t.path, ...(t.userns ? { userns: t.userns } : {}), ...(c.pasta.noNetnsQuit ? { noNetnsQuit: true } : {}) } : {}),
    ...(c.pasta.ifname !== undefined ? { nsIfname: c.pasta.ifname } : {}),
    ...(c.pasta.nsMac !== undefined ? { nsMac: c.pasta.nsMac } : {}),
    ...(c.pasta.noSplice ? { noSplice: true } : {}),
    ...(c.forward.tcp.mode === 'auto' && !c.guest.disabled.tcp ? { tcpAuto: true } : {}),
    ...(c.forward.udp.mode === 'auto' && !c.guest.disabled.udp ? { udpAuto: true } : {}),
    ...(c.forward.tcpNs.mode === 'auto' && !c.guest.disabled.tcp ? { tcpNsAuto: true } : {}),
    ...(c.forward.udpNs.mode === 'auto' && !c.guest.disabled.udp ? { udpNsAuto: true } : {}),
    ...(c.forward.tcpNs.mode === 'spec' && !c.guest.disabled.tcp ? { tcpNsForwards: nsForwards(c.forward.tcpNs) } : {}),
    ...(c.forward.udpNs.mode === 'spec' && !c.guest.disabled.udp ? { udpNsForwards: nsForwards(c.forward.udpNs) } : {}),
  });
  if (t.kind !== 'command') describe(log, inst);
  watch(log, c, inst);
  stopOnSignals(inst);
  ready(c);
  const status = await inst.exited;
  // The engine stops by itself after the command: its last flow records
  // and final counts come with that.
  await Promise.race([inst.reason, new Promise((r) => setTimeout(r, 1000).unref())]);
  report(log, c, inst.stats());
  inst.stop();
  return status;
}
