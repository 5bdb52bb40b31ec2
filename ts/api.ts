// The programmatic API: start passt (a qemu guest on a UNIX socket) or
// pasta (a network namespace) from Node, and get an object that says when
// it is ready, reports its events, and stops.
import { agentPath, native, type BindingConfig, type EngineStats } from './native.js';
import { Engine } from './engine.js';
import { planGuest, readResolvConf, type GuestOverrides, type GuestPlan } from './guest.js';

/** A forwarded host port (-t/-u); without `addr`, every address of each
 * family the guest has. */
export interface PortForwardOption {
  addr?: string;
  iface?: string;
  port: number;
  guestPort: number;
  bestEffort?: boolean;
}

export interface CommonOptions extends GuestOverrides {
  /** -i / --outbound-if4 / --outbound-if6: host interfaces to copy from. */
  interface?: string;
  outboundIf4?: string;
  outboundIf6?: string;
  /** --pcap FILE */
  pcap?: string;
  /** -t: inbound TCP forwards (bind address, host port, guest port).
   * `bestEffort`: a port that cannot be bound is skipped (-t all)
   * instead of failing the start. `iface`: only connections arriving
   * through that interface (-t %IFACE/PORTS). */
  tcpForwards?: PortForwardOption[];
  /** -u: inbound UDP forwards, the same way. */
  udpForwards?: PortForwardOption[];
}

export interface PasstOptions extends CommonOptions {
  /** -s: the socket path; default the first free /tmp/passt_N.socket. */
  socket?: string;
  /** -F: an already connected socket descriptor (implies oneOff). */
  fd?: number;
  /** -1: exit when the guest disconnects. */
  oneOff?: boolean;
}

export interface PastaOptions extends CommonOptions {
  /** Command to run in a new namespace (default: the user's shell). */
  command?: string[];
  /** Join this network namespace (path) instead of creating one. */
  netns?: string;
  /** With `netns`: the user namespace to join first. */
  userns?: string;
  /** Join the namespaces of this process. */
  pid?: number;
  /** -I: tap name (default: the host interface's name). */
  nsIfname?: string;
  /** --config-net: addresses, routes and MTU set through netlink. */
  configNet?: boolean;
  /** --ns-mac-addr */
  nsMac?: string;
  /** --no-splice: connections from the host's loopback to -t ports go
   * through the tap like the others, instead of being spliced to the
   * namespace's loopback. */
  noSplice?: boolean;
  /** -t auto: forward, from the host, every TCP port the namespace
   * listens on, following it every second. */
  tcpAuto?: boolean;
  /** -T: forward TCP port `port` of the namespace to `hostPort` on the
   * host's loopback, through the splice path. Without `addr`, the
   * namespace's loopback of each family the guest has. */
  tcpNsForwards?: { addr?: string; port: number; hostPort: number }[];
  /** -U: the same for UDP: datagrams to the namespace's `port` reach the
   * host's loopback `hostPort`, and replies come back. */
  udpNsForwards?: { addr?: string; port: number; hostPort: number }[];
}

export interface Instance {
  readonly engine: Engine;
  /** What the guest is told. */
  readonly plan: GuestPlan;
  /** passt: the socket qemu connects to. */
  readonly socketPath?: string;
  stats(): EngineStats;
  stop(): void;
}

export interface PastaInstance extends Instance {
  /** Resolves with the command's exit status. */
  readonly exited: Promise<number>;
}

function plan(o: CommonOptions): GuestPlan {
  const host = native().hostDiscover({
    ...(o.outboundIf4 ?? o.interface ? { ifname4: o.outboundIf4 ?? o.interface } : {}),
    ...(o.outboundIf6 ?? o.interface ? { ifname6: o.outboundIf6 ?? o.interface } : {}),
  });
  return planGuest(host, readResolvConf(), o);
}

function base(p: GuestPlan, o: CommonOptions): BindingConfig {
  const c: BindingConfig = { guest: p.guest, gatewayMap: p.gatewayMap };
  if (o.pcap) c.pcap = o.pcap;
  // No bind address: every address of each family the guest has.
  const binds = (addr?: string) => (addr ? [addr] : [...(p.guest.v4 ? ['0.0.0.0'] : []), ...(p.guest.v6 ? ['::'] : [])]);
  const forwards = (list: PortForwardOption[]) =>
    list.flatMap((f) =>
      binds(f.addr).map((addr) => ({
        addr,
        port: f.port,
        guestPort: f.guestPort,
        ...(f.iface ? { iface: f.iface } : {}),
        ...(f.bestEffort ? { bestEffort: true } : {}),
      })),
    );
  if (o.tcpForwards?.length) c.tcpForwards = forwards(o.tcpForwards);
  if (o.udpForwards?.length) c.udpForwards = forwards(o.udpForwards);
  return c;
}

export function startPasst(o: PasstOptions = {}): Promise<Instance> {
  const p = plan(o);
  const config = base(p, o);
  config.backend =
    o.fd !== undefined
      ? { kind: 'qemu-fd', fd: o.fd }
      : { kind: 'qemu', oneOff: o.oneOff ?? false, ...(o.socket ? { path: o.socket } : {}) };
  const engine = Engine.start(config);
  const instance = (socketPath?: string): Instance => ({
    engine,
    plan: p,
    ...(socketPath !== undefined ? { socketPath } : {}),
    stats: () => engine.stats(),
    stop: () => engine.stop(),
  });
  if (config.backend.kind === 'qemu-fd') return Promise.resolve(instance());
  // The socket is bound before start returns; its path comes as the
  // first event, through the event queue.
  return new Promise((resolve, reject) => {
    engine.once('listening', (e: { path: string }) => resolve(instance(e.path)));
    void engine.done.then((reason) => reject(new Error(reason)));
  });
}

export async function startPasta(o: PastaOptions = {}): Promise<PastaInstance> {
  const p = plan(o);
  const config = base(p, o);
  const ifname = o.nsIfname ?? p.ifname4 ?? p.ifname6 ?? 'tap0';
  const target =
    o.pid !== undefined
      ? { netns: `/proc/${o.pid}/ns/net`, userns: `/proc/${o.pid}/ns/user` }
      : o.netns !== undefined
        ? { netns: o.netns, ...(o.userns ? { userns: o.userns } : {}) }
        : {};
  const backend: Extract<NonNullable<BindingConfig['backend']>, { kind: 'pasta' }> = {
    kind: 'pasta',
    agent: agentPath(),
    command: o.command ?? [],
    ifname,
    ...target,
    ...(o.noSplice ? { noSplice: true } : {}),
  };
  if (o.configNet) {
    const g = p.guest;
    backend.configNet = {
      mtu: o.mtu ?? 65520,
      ...(o.nsMac ? { mac: o.nsMac } : {}),
      ...(g.v4 ? { v4: { addr: g.v4.addr, prefixLen: g.v4.prefixLen, gateway: g.v4.gateway } } : {}),
      ...(g.v6 ? { v6: { addr: g.v6.addr, prefixLen: g.v6.prefixLen, gateway: g.v6.gateway } } : {}),
    };
  }
  const loopbacks = [...(p.guest.v4 ? ['127.0.0.1'] : []), ...(p.guest.v6 ? ['::1'] : [])];
  const nsForwards = (list: { addr?: string; port: number; hostPort: number }[]) =>
    list.flatMap((f) => (f.addr ? [f.addr] : loopbacks).map((addr) => ({ addr, port: f.port, hostPort: f.hostPort })));
  if (o.tcpNsForwards?.length) backend.nsTcpForwards = nsForwards(o.tcpNsForwards);
  if (o.udpNsForwards?.length) backend.nsUdpForwards = nsForwards(o.udpNsForwards);
  config.backend = backend;
  if (o.tcpAuto) config.tcpAuto = true;
  let exit: (status: number) => void = () => {};
  const exited = new Promise<number>((resolve) => (exit = resolve));
  const engine = Engine.start(config);
  engine.on('command-exited', (e: { status: number }) => exit(e.status));
  // Stopped on request: 0; stopped by an error before the command ended: 1.
  void engine.done.then((reason) => exit(reason === 'stopped' ? 0 : 1));
  return { engine, plan: p, exited, stats: () => engine.stats(), stop: () => engine.stop() };
}
