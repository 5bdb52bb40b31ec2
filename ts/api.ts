// The programmatic API: start passt (a qemu guest on a UNIX socket) or
// pasta (a network namespace) from Node, and get a handle that says when
// it is ready, reports its events and flows, changes its forwards, and
// stops.
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { agentPath, native, type BindingConfig, type EngineEvent, type EngineStats, type FlowRecord, type Forward, type NsForward } from './native.js';

type PastaBackend = Extract<NonNullable<BindingConfig['backend']>, { kind: 'pasta' }>;
import { Engine } from './engine.js';
import { planGuest, readResolvConf, type GuestOverrides, type GuestPlan } from './guest.js';
import { nsSpecForwards, specForwards } from './config/forwards.js';
import { policyFlags, startPolicyWorker, type OpenedFlow, type Policy, type PolicyWorker } from './policy.js';

/** A forwarded host port (-t/-u); without `addr`, every address of each
 * family the guest has. */
export interface PortForwardOption {
  addr?: string;
  iface?: string;
  port: number;
  guestPort: number;
  bestEffort?: boolean;
}

/** pasta's -T/-U: namespace port `port` reaches the host loopback's
 * `hostPort`; without `addr`, the namespace's loopback of each family
 * the guest has (127.0.0.1, ::1). */
export interface NsForwardOption {
  addr?: string;
  port: number;
  hostPort: number;
}

export interface CommonOptions extends GuestOverrides {
  /** -i / --outbound-if4 / --outbound-if6: host interfaces to copy from. */
  interface?: string;
  outboundIf4?: string;
  outboundIf6?: string;
  /** --pcap FILE */
  pcap?: string;
  /** --trace: 'trace' events, a line per frame each way (costly: a
   * debugging aid). */
  trace?: boolean;
  /** -t: inbound TCP forwards (bind address, host port, guest port).
   * `bestEffort`: a port that cannot be bound is skipped (-t all)
   * instead of failing the start. `iface`: only connections arriving
   * through that interface (-t %IFACE/PORTS). */
  tcpForwards?: PortForwardOption[];
  /** -u: inbound UDP forwards, the same way. */
  udpForwards?: PortForwardOption[];
  /** Hooks asked about each new flow (outbound, inbound) and told of
   * finished ones (flowEnd). See examples/. */
  policy?: Policy;
  /** A policy module (like --policy FILE) whose hooks run in a worker
   * thread: a new flow waits microseconds for its decision instead of
   * tens (the main thread's event loop). Not with `policy`. */
  policyFile?: string;
  /** How long a decision hook may take before the flow gets the default
   * (allow) and a warning event is emitted; default 100 ms. */
  policyTimeoutMs?: number;
  /** What a flow gets when its decision hook throws, answers garbage or
   * misses the timeout: 'allow' (default) or 'reject' (fail closed). */
  policyDefault?: 'allow' | 'reject';
  /** Emit 'flow-open' and 'flow-end' events on the handle (true), or
   * 'flow-end' only ('end'). Off by default: each batch crosses threads. */
  flowEvents?: boolean | 'end';
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
  /** Join this network namespace (path) instead of creating one. The
   * engine stops once that path is deleted (`ip netns del`), unless
   * `noNetnsQuit`. */
  netns?: string;
  /** --no-netns-quit: keep going when the `netns` path is deleted. */
  noNetnsQuit?: boolean;
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
  tcpNsForwards?: NsForwardOption[];
  /** -U: the same for UDP: datagrams to the namespace's `port` reach the
   * host's loopback `hostPort`, and replies come back. */
  udpNsForwards?: NsForwardOption[];
  /** -u auto: forward, from the host, the UDP ports bound in the
   * namespace when pasta starts. */
  udpAuto?: boolean;
  /** -T auto / -U auto: the host's TCP listeners / bound UDP ports on its
   * loopback (or any address) when pasta starts get the same port on the
   * namespace's loopback, spliced to them. */
  tcpNsAuto?: boolean;
  udpNsAuto?: boolean;
}

/** Events on a handle: each engine event under its type (and all under
 * 'event'), and with `flowEvents`, one per opened or finished flow. */
export type InstanceEvents = { [T in EngineEvent['type']]: Extract<EngineEvent, { type: T }> } & {
  event: EngineEvent;
  'flow-open': OpenedFlow;
  'flow-end': FlowRecord;
};

/** Host ports forwarded to the guest, changed while running. `spec` is a
 * -t/-u SPEC (ports, ranges, ADDR/PORTS, %IFACE/PORTS, PORT:GUESTPORT,
 * ~exclusions, 'all') or a list of forwards; without an address, each
 * family the guest has (0.0.0.0, ::). */
export interface ForwardControl {
  /** Listens on every port of `spec`, or on none: a port that cannot be
   * bound (in use) throws and adds nothing. */
  add(proto: 'tcp' | 'udp', spec: string | PortForwardOption[]): void;
  /** Stops listening on the ports of `spec` (guest ports are ignored);
   * open flows go on. Returns how many listeners were closed. */
  remove(proto: 'tcp' | 'udp', spec: string | { addr?: string; port: number }[]): number;
  /** The forwards asked for so far: the start's, plus added, minus
   * removed (best-effort ones that could not be bound included; -t auto
   * ports not). */
  list(): { tcp: Forward[]; udp: Forward[] };
}

/** pasta's -T/-U forwards (namespace ports spliced to the host's
 * loopback), changed while running. `spec` is a -T/-U SPEC (ports,
 * ranges, ADDR/PORTS, NSPORT:HOSTPORT) or a list of forwards. */
export interface NsForwardControl {
  /** Listens in the namespace on every port of `spec`, or on none: a
   * port in use there throws and adds nothing. */
  add(proto: 'tcp' | 'udp', spec: string | NsForwardOption[]): void;
  /** Closes the namespace listeners of `spec` (host ports are ignored;
   * -T auto's are left to it). Spliced TCP connections go on; a -U
   * listener's datagram flows end with it. Returns how many closed. */
  remove(proto: 'tcp' | 'udp', spec: string | { addr?: string; port: number }[]): number;
  /** The forwards asked for so far: the start's, plus added, minus
   * removed (-T auto's not). */
  list(): { tcp: NsForward[]; udp: NsForward[] };
}

/** What passt and pasta handles have in common. */
export interface Handle {
  readonly engine: Engine;
  /** What the guest is told. */
  readonly plan: GuestPlan;
  readonly forward: ForwardControl;
  /** Resolves once the engine has stopped, with why ('stopped' after stop()). */
  readonly reason: Promise<string>;
  stats(): EngineStats;
  stop(): void;
  on<K extends keyof InstanceEvents>(event: K, listener: (e: InstanceEvents[K]) => void): this;
  off<K extends keyof InstanceEvents>(event: K, listener: (e: InstanceEvents[K]) => void): this;
}

export interface Instance extends Handle {
  /** passt: the socket qemu connects to. */
  readonly socketPath?: string;
  /** The same as `reason`. */
  readonly exited: Promise<string>;
}

export interface PastaInstance extends Handle {
  /** -T/-U at run time. */
  readonly nsForward: NsForwardControl;
  /** Resolves with the command's exit status (stopped: 0; ended by an
   * error before the command: 1). */
  readonly exited: Promise<number>;
}

function plan(o: CommonOptions): GuestPlan {
  const host = native().hostDiscover({
    ...(o.outboundIf4 ?? o.interface ? { ifname4: o.outboundIf4 ?? o.interface } : {}),
    ...(o.outboundIf6 ?? o.interface ? { ifname6: o.outboundIf6 ?? o.interface } : {}),
  });
  return planGuest(host, readResolvConf(), o);
}

/** No bind address: every address of each family the guest has. */
function binds(p: GuestPlan, addr?: string): string[] {
  return addr ? [addr] : [...(p.guest.v4 ? ['0.0.0.0'] : []), ...(p.guest.v6 ? ['::'] : [])];
}

/** Forwards as the engine takes them: one per concrete bind address. */
function concrete(p: GuestPlan, list: PortForwardOption[]): Forward[] {
  return list.flatMap((f) =>
    binds(p, f.addr).map((addr) => ({
      addr,
      port: f.port,
      guestPort: f.guestPort,
      ...(f.iface ? { iface: f.iface } : {}),
      ...(f.bestEffort ? { bestEffort: true } : {}),
    })),
  );
}

function base(p: GuestPlan, o: CommonOptions, w?: PolicyWorker): BindingConfig {
  const c: BindingConfig = { guest: p.guest, gatewayMap: p.gatewayMap };
  if (o.pcap) c.pcap = o.pcap;
  if (o.trace) c.trace = true;
  if (o.tcpForwards?.length) c.tcpForwards = concrete(p, o.tcpForwards);
  if (o.udpForwards?.length) c.udpForwards = concrete(p, o.udpForwards);
  const t = o.policyTimeoutMs;
  if (t !== undefined && !(Number.isInteger(t) && t > 0)) throw new Error(`policyTimeoutMs ${t}: not a positive integer`);
  // A worker's module: flags from the hooks it reported; a stub stands
  // for each (the engine only needs to know which exist).
  const stub = () => 'allow' as const;
  const policy: Policy | undefined = w
    ? {
        ...(w.hooks.outbound ? { outbound: stub } : {}),
        ...(w.hooks.inbound ? { inbound: stub } : {}),
        ...(w.hooks.flowEnd ? { flowEnd: () => {} } : {}),
      }
    : o.policy;
  const flags = policyFlags({
    ...(policy ? { policy } : {}),
    ...(o.flowEvents !== undefined ? { flowEvents: o.flowEvents } : {}),
    ...(t !== undefined ? { timeoutMs: t } : {}),
  });
  if (flags && o.policyDefault === 'reject') flags.default = 'reject';
  if (flags && w) {
    flags.queue = w.queue;
    if (w.hooks.flowEnd) flags.workerFlowEnd = true;
  }
  if (flags) c.policy = flags;
  return c;
}

/** The decision worker for `policyFile`, started before the engine so
 * that no flow waits for a module still loading. */
async function policyWorker(o: CommonOptions): Promise<PolicyWorker | undefined> {
  if (o.policyFile === undefined) return undefined;
  if (o.policy) throw new Error('policy and policyFile: give one');
  return startPolicyWorker(o.policyFile);
}

/** Engine.start with the main thread's part of the policy: the hooks
 * themselves, or, with a worker, only the flow events asked for. */
function startEngine(config: BindingConfig, o: CommonOptions, w?: PolicyWorker): Engine {
  const engine = Engine.start(config, w ? {} : o.policy, !w || (o.flowEvents ?? false) !== false);
  w?.onWarning((message) => engine.emit('warning', { type: 'warning', message }));
  return engine;
}

/** What a -t/-u or -T/-U forward control needs to know: its name in
 * errors, the spec grammar (`parse`), forwards as the engine takes them
 * (`concrete`), the addresses an option without one stands for
 * (`binds`), and the engine's calls. */
interface ControlParts<O extends { addr?: string; port: number }, F extends { addr: string; port: number }> {
  name: string;
  parse(opt: string, spec: string): O[];
  concrete(list: O[]): F[];
  binds(addr?: string): string[];
  add(proto: 'tcp' | 'udp', list: F[]): void;
  remove(proto: 'tcp' | 'udp', targets: { addr: string; port: number }[]): number;
}

/** add/remove/list over the forwards `initial` starts with. */
function control<O extends { addr?: string; port: number }, F extends { addr: string; port: number }>(
  p: GuestPlan,
  initial: { tcp: F[]; udp: F[] },
  c: ControlParts<O, F>,
): {
  add(proto: 'tcp' | 'udp', spec: string | O[]): void;
  remove(proto: 'tcp' | 'udp', spec: string | { addr?: string; port: number }[]): number;
  list(): { tcp: F[]; udp: F[] };
} {
  const current = { tcp: [...initial.tcp], udp: [...initial.udp] };
  const key = (f: { addr: string; port: number }) => `${f.addr} ${f.port}`;
  const opt = (op: string, proto: 'tcp' | 'udp') => {
    if (proto !== 'tcp' && proto !== 'udp') throw new Error(`${c.name}.${op}: protocol ${String(proto)} is not 'tcp' or 'udp'`);
    if (p.guest.disabled[proto]) throw new Error(`${c.name}.${op} ${proto}: ${proto.toUpperCase()} is disabled`);
    return `${c.name}.${op} ${proto}`;
  };
  return {
    add(proto, spec) {
      const o = opt('add', proto);
      const list = c.concrete(typeof spec === 'string' ? c.parse(o, spec) : spec);
      if (!list.length) return;
      c.add(proto, list);
      current[proto].push(...list);
    },
    remove(proto, spec) {
      const o = opt('remove', proto);
      const wanted: { addr?: string; port: number }[] = typeof spec === 'string' ? c.parse(o, spec) : spec;
      const targets = new Map<string, { addr: string; port: number }>();
      for (const f of wanted) for (const addr of c.binds(f.addr)) targets.set(key({ addr, port: f.port }), { addr, port: f.port });
      if (!targets.size) return 0;
      const n = c.remove(proto, [...targets.values()]);
      current[proto] = current[proto].filter((f) => !targets.has(key(f)));
      return n;
    },
    list: () => ({ tcp: current.tcp.map((f) => ({ ...f })), udp: current.udp.map((f) => ({ ...f })) }),
  };
}

function forwardControl(engine: Engine, p: GuestPlan, initial: BindingConfig): ForwardControl {
  return control(p, { tcp: initial.tcpForwards ?? [], udp: initial.udpForwards ?? [] }, {
    name: 'forward',
    parse: specForwards,
    concrete: (list) => concrete(p, list),
    binds: (addr) => binds(p, addr),
    add: (proto, list) => engine.forwardAdd(proto, list),
    remove: (proto, targets) => engine.forwardRemove(proto, targets),
  });
}

/** The namespace's loopback of each family the guest has, or `addr`. */
function nsBinds(p: GuestPlan, addr?: string): string[] {
  return addr ? [addr] : [...(p.guest.v4 ? ['127.0.0.1'] : []), ...(p.guest.v6 ? ['::1'] : [])];
}

/** -T/-U forwards as the engine takes them: one per namespace address. */
function nsConcrete(p: GuestPlan, list: NsForwardOption[]): NsForward[] {
  return list.flatMap((f) => nsBinds(p, f.addr).map((addr) => ({ addr, port: f.port, hostPort: f.hostPort })));
}

function nsForwardControl(engine: Engine, p: GuestPlan, backend: PastaBackend): NsForwardControl {
  return control(p, { tcp: backend.nsTcpForwards ?? [], udp: backend.nsUdpForwards ?? [] }, {
    name: 'nsForward',
    parse: nsSpecForwards,
    concrete: (list) => nsConcrete(p, list),
    binds: (addr) => nsBinds(p, addr),
    add: (proto, list) => engine.nsForwardAdd(proto, list),
    remove: (proto, targets) => engine.nsForwardRemove(proto, targets),
  });
}

/** The parts of a handle both modes share. */
class Running implements Handle {
  readonly forward: ForwardControl;
  readonly reason: Promise<string>;

  constructor(
    readonly engine: Engine,
    readonly plan: GuestPlan,
    config: BindingConfig,
  ) {
    this.forward = forwardControl(engine, plan, config);
    this.reason = engine.done;
  }

  stats(): EngineStats {
    return this.engine.stats();
  }

  stop(): void {
    this.engine.stop();
  }

  on<K extends keyof InstanceEvents>(event: K, listener: (e: InstanceEvents[K]) => void): this {
    this.engine.on(event, listener);
    return this;
  }

  off<K extends keyof InstanceEvents>(event: K, listener: (e: InstanceEvents[K]) => void): this {
    this.engine.off(event, listener);
    return this;
  }
}

class PasstHandle extends Running implements Instance {
  readonly exited: Promise<string>;
  readonly socketPath?: string;

  constructor(engine: Engine, plan: GuestPlan, config: BindingConfig, socketPath?: string) {
    super(engine, plan, config);
    this.exited = this.reason;
    if (socketPath !== undefined) this.socketPath = socketPath;
  }
}

class PastaHandle extends Running implements PastaInstance {
  readonly exited: Promise<number>;
  readonly nsForward: NsForwardControl;

  constructor(engine: Engine, plan: GuestPlan, config: BindingConfig, backend: PastaBackend) {
    super(engine, plan, config);
    this.nsForward = nsForwardControl(engine, plan, backend);
    let exit: (status: number) => void = () => {};
    this.exited = new Promise<number>((resolve) => (exit = resolve));
    engine.on('command-exited', (e: { status: number }) => exit(e.status));
    // Stopped on request: 0; stopped by an error before the command ended: 1.
    void engine.done.then((reason) => exit(reason === 'stopped' ? 0 : 1));
  }
}

export async function startPasst(o: PasstOptions = {}): Promise<Instance> {
  const p = plan(o);
  const w = await policyWorker(o);
  const config = base(p, o, w);
  config.backend =
    o.fd !== undefined
      ? { kind: 'qemu-fd', fd: o.fd }
      : { kind: 'qemu', oneOff: o.oneOff ?? false, ...(o.socket ? { path: o.socket } : {}) };
  const engine = startEngine(config, o, w);
  if (config.backend.kind === 'qemu-fd') return new PasstHandle(engine, p, config);
  // The socket is bound before start returns; its path comes as the
  // first event, through the event queue.
  return new Promise((resolve, reject) => {
    engine.once('listening', (e: { path: string }) => resolve(new PasstHandle(engine, p, config, e.path)));
    void engine.done.then((reason) => reject(new Error(reason)));
  });
}

export async function startPasta(o: PastaOptions = {}): Promise<PastaInstance> {
  const p = plan(o);
  const w = await policyWorker(o);
  const config = base(p, o, w);
  const ifname = o.nsIfname ?? p.ifname4 ?? p.ifname6 ?? 'tap0';
  const target =
    o.pid !== undefined
      ? { netns: `/proc/${o.pid}/ns/net`, userns: `/proc/${o.pid}/ns/user` }
      : o.netns !== undefined
        ? { netns: o.netns, ...(o.userns ? { userns: o.userns } : {}) }
        : {};
  const backend: PastaBackend = {
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
  if (o.tcpNsForwards?.length) backend.nsTcpForwards = nsConcrete(p, o.tcpNsForwards);
  if (o.udpNsForwards?.length) backend.nsUdpForwards = nsConcrete(p, o.udpNsForwards);
  if (o.tcpNsAuto) backend.nsTcpAuto = true;
  if (o.udpNsAuto) backend.nsUdpAuto = true;
  config.backend = backend;
  if (o.tcpAuto) config.tcpAuto = true;
  if (o.udpAuto) config.udpAuto = true;
  const handle = new PastaHandle(startEngine(config, o, w), p, config, backend);
  if (o.netns !== undefined && o.pid === undefined && !o.noNetnsQuit) stopWhenDeleted(o.netns, handle);
  return handle;
}

/** Stops `handle` once the namespace file at `path` is gone (man pasta,
 * --no-netns-quit): inotify on its directory, which `ip netns del`'s
 * unlink wakes; a poll each second where the directory cannot be
 * watched. The engine's agent keeps the namespace itself alive, so the
 * file is what says the namespace's owner is done with it. */
function stopWhenDeleted(path: string, handle: PastaHandle): void {
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  const done = () => {
    watcher?.close();
    if (timer) clearInterval(timer);
  };
  const check = () => {
    if (existsSync(path)) return;
    done();
    handle.stop();
  };
  const poll = () => {
    watcher?.close();
    timer ??= setInterval(check, 1000).unref();
  };
  try {
    watcher = watch(dirname(path), check).on('error', poll);
    watcher.unref();
  } catch {
    poll();
  }
  void handle.exited.then(done);
  check();
}
