// Loads the platform's compiled addon and declares its types: the only
// module that touches the binding. Everything else imports from here.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A value that crosses the bridge unchanged (no functions, no bigints). */
export type Plain =
  | undefined
  | null
  | boolean
  | number
  | string
  | Plain[]
  | { [key: string]: Plain };

/** Opaque handle to a running engine. */
export interface EngineHandle {
  readonly __brand: 'EngineHandle';
}

export interface EngineStats {
  running: boolean;
  /** 20 ms timer intervals elapsed. */
  ticks: number;
  /** epoll_wait returns that delivered events. */
  wakeups: number;
  /** Events with a token the engine did not issue (should stay 0). */
  badTokens: number;
  /** Frames from the guest, whatever became of them. */
  framesIn: number;
  /** Frames to the guest. */
  framesOut: number;
  /** Frames to the guest its link could not take. */
  txDropped: number;
  /** Flow sockets that failed (the flow was closed). */
  flowErrors: number;
  /** Guest frames dropped, by reason (only reasons that dropped any). */
  drops: Record<string, number>;
  /** Live flows by protocol and state (tcp: connecting, syn-sent,
   * syn-ack-sent, established, closing; the others: active), and flows
   * parked waiting for a policy decision. */
  flows: {
    tcp: Record<string, number>;
    udp: Record<string, number>;
    icmp: Record<string, number>;
    /** pasta's spliced TCP (-T, host-loopback clients of -t). */
    splice: Record<string, number>;
    /** pasta's spliced UDP (-U, host-loopback clients of -u). */
    udpSplice: Record<string, number>;
    parked: number;
  };
  /** Payload bytes carried, all flows (ended and live). */
  bytes: { fromGuest: number; toGuest: number };
  /** Policy hook decisions: asked, and what came of them. */
  policy: {
    asked: number;
    allowed: number;
    rejected: number;
    rewritten: number;
    timeouts: number;
    errors: number;
    /** Microseconds from asking to carrying out, summed over the
     * answered (not timed out) decisions. */
    waitUs: number;
  };
}

export type Proto = 'tcp' | 'udp' | 'icmp';
export interface Endpoint {
  addr: string;
  port: number;
}

/** A new flow as a policy hook sees it. Outbound: `src` is the guest,
 * `dst` what the guest addressed. Inbound: `src` is the host-side client
 * (its real address), `dst` the guest address and port it will reach.
 * ICMP echo: `port` is the echo identifier. */
export interface FlowInfo {
  proto: Proto;
  direction: 'outbound' | 'inbound';
  src: Endpoint;
  dst: Endpoint;
}

/** A hook's answer: allow, reject (TCP: reset; UDP/ICMP: ICMP
 * administratively prohibited), or allow with a rewrite. Outbound: `dst`
 * is where the host socket connects (replaces the gateway mapping),
 * `src` the host address it binds to. Inbound: `dst` the guest address
 * and port, `src` the address and port the guest sees the client at. */
export type Verdict = 'allow' | 'reject' | { dst?: Partial<Endpoint>; src?: Partial<Endpoint> };

/** One finished flow. `src`/`dst` as in `FlowInfo` (before mapping);
 * `mapped` the same flow on the other side (after mapping: outbound, the
 * host socket's local and remote address; inbound, the addresses the
 * guest sees). ICMP echo: one flow per echo identifier, to its first
 * destination; its bytes are the echo data. */
export interface FlowRecord extends FlowInfo {
  mapped: { src: Endpoint; dst: Endpoint };
  bytesFromGuest: number;
  bytesToGuest: number;
  /** Wall clock at the flow's start, ms since the epoch. */
  startedAt: number;
  durationMs: number;
  /** closed: both sides finished; reset: either side reset (or the
   * connect was refused); timeout: expired idle or unanswered; rejected:
   * by a policy hook; error: a socket failed; stopped: the engine stopped
   * or the guest went away. */
  end: 'closed' | 'reset' | 'timeout' | 'rejected' | 'error' | 'stopped';
}

/** What the engine asks of JS (`onPolicy`): a decision for a new flow
 * (the return value, or its promise, is the verdict; a throw or rejection
 * is reported as an error and the flow gets the default, allow), or a
 * batch of opened / finished flows (return value ignored). */
export type PolicyRequest =
  | { type: 'outbound' | 'inbound'; flow: FlowInfo }
  | { type: 'flow-open'; flows: (FlowInfo & { mapped: { src: Endpoint; dst: Endpoint } })[] }
  | { type: 'flow-end'; records: FlowRecord[] };

/** A host port forwarded to the guest: where to listen, the guest port,
 * the interface (%IFACE), and whether failing to bind skips it. */
export interface Forward {
  addr: string;
  iface?: string;
  port: number;
  guestPort: number;
  bestEffort?: boolean;
}

/** pasta's -T/-U: where to listen in the namespace, and the port of the
 * host's loopback (of the same family) its clients reach. */
export interface NsForward {
  addr: string;
  port: number;
  hostPort: number;
}

/** The engine's configuration as it crosses to Rust (see convert.rs). */

export interface BindingConfig {
  guest: {
    ourMac: string;
    v4?: { addr: string; prefixLen: number; gateway: string; dns: string[] };
    v6?: { addr: string; prefixLen: number; gateway: string; routerLl: string; dns: string[] };
    search: string[];
    mtu?: number;
    /** -H: sent as DHCP option 12. */
    hostname?: string;
    disabled: Partial<Record<'dhcp' | 'ndp' | 'dhcpv6' | 'ra' | 'icmp' | 'tcp' | 'udp', boolean>>;
  };
  /** Gateway to host loopback per family; dns4/dns6: DNS traffic (port
   * 53) to `match` goes to the host's resolver `host`; out4/out6: the
   * address outbound sockets bind to (-o), except towards loopback;
   * guest4/guest6 (--map-guest-addr): `match` leads to the guest's own
   * address `host` on the host, and clients from it appear from `match`. */
  gatewayMap?: {
    v4?: string;
    v6?: string;
    dns4?: { match: string; host: string };
    dns6?: { match: string; host: string };
    out4?: string;
    out6?: string;
    guest4?: { match: string; host: string };
    guest6?: { match: string; host: string };
  };
  pcap?: string;
  /** --trace: a 'trace' event with every frame, described. */
  trace?: boolean;
  /** Inbound TCP forwards: listen on addr:port, lead to the guest's guestPort. */
  tcpForwards?: Forward[];
  /** Inbound UDP forwards (-u), the same way. */
  udpForwards?: Forward[];
  /** pasta: forward the ports the namespace listens on (-t auto). */
  tcpAuto?: boolean;
  /** pasta: forward the UDP ports bound in the namespace at start (-u auto). */
  udpAuto?: boolean;
  /** Which policy requests the engine makes (none without this): a
   * decision per new outbound / inbound flow, batches of opened and
   * finished flows. A decision not made within `timeoutMs` (default 100)
   * is the default (allow), with a warning event. */
  policy?: {
    outbound?: boolean;
    inbound?: boolean;
    flowOpen?: boolean;
    flowEnd?: boolean;
    timeoutMs?: number;
    /** What a flow gets when its hook fails or misses the timeout. */
    default?: 'allow' | 'reject';
    /** A decision worker's queue (policyQueueCreate): decisions go
     * there, and finished flows too with `workerFlowEnd`; `onPolicy`
     * then gets only flow-open/flow-end batches. */
    queue?: number;
    workerFlowEnd?: boolean;
  };
  backend?:
    | { kind: 'qemu'; path?: string; oneOff: boolean }
    | { kind: 'qemu-fd'; fd: number }
    | {
        kind: 'pasta';
        agent: string;
        netns?: string;
        userns?: string;
        command: string[];
        ifname: string;
        /** --no-splice: host-loopback clients of -t go through the tap. */
        noSplice?: boolean;
        /** -T: listen on addr:port in the namespace, for the host's hostPort. */
        nsTcpForwards?: NsForward[];
        /** -U: the same for UDP. */
        nsUdpForwards?: NsForward[];
        /** -T auto / -U auto: mirror the host's loopback ports at start. */
        nsTcpAuto?: boolean;
        nsUdpAuto?: boolean;
        configNet?: {
          mtu?: number;
          mac?: string;
          v4?: { addr: string; prefixLen: number; gateway?: string };
          v6?: { addr: string; prefixLen: number; gateway?: string };
        };
      };
}

export type EngineEvent =
  | { type: 'listening'; path: string }
  | { type: 'guest-connected' }
  | { type: 'guest-disconnected'; reason: string }
  | { type: 'command-exited'; status: number }
  | { type: 'warning'; message: string }
  /** --trace: a line per frame, "in" from the guest, "out" to it. */
  | { type: 'trace'; lines: string[] }
  | { type: 'stopped'; reason: string };

export interface TsfnSelfTestReport {
  calls: number;
  /** Time the Rust thread took to make all its calls. */
  enqueueMs: number;
  /** Wall clock (ms since the epoch) just after the last call was made. */
  lastCallAt: number;
  /** Replies already received when the last call was made. */
  repliesAtLastCall: number;
  replies: number;
  /** Replies that arrived out of call order. */
  outOfOrder: number;
  /** Sum of the numeric replies. */
  sum: number;
  errorCount: number;
  errors: { index: number; message: string }[];
}

/** One IP version of the host's configuration, as routing selects it. */
export interface HostFamily {
  ifname: string;
  ifindex: number;
  mtu: number;
  mac: string | null;
  addrs: { addr: string; prefixLen: number }[];
  linkLocal: string[];
  gateway: string | null;
}

export interface HostInfo {
  v4: HostFamily | null;
  v6: HostFamily | null;
}

export interface Binding {
  /** qrap: connects to the first answering /tmp/passt_N.socket (or in `dir`). */
  qrapConnect(dir?: string): { fd: number; path: string };
  /** Reads the host's interfaces and routes (rtnetlink); `ifname4/6` force the interface. */
  hostDiscover(options?: { ifname4?: string; ifname6?: string }): HostInfo;
  /** Starts an engine; with a pasta backend, sets the namespace up first.
   * `onPolicy` answers the requests `config.policy` asks for. */
  engineStart(
    config?: BindingConfig,
    onEvent?: (e: EngineEvent) => void,
    onPolicy?: (r: PolicyRequest) => Verdict | Promise<Verdict> | void,
  ): EngineHandle;
  /** Adds inbound forwards (-t/-u) to a running engine: every socket is
   * bound before any is added, so a port in use throws and adds nothing.
   * (`addr` is a concrete bind address: 0.0.0.0 or :: for all.) */
  engineForwardAdd(handle: EngineHandle, proto: 'tcp' | 'udp', forwards: Forward[]): void;
  /** Removes inbound forwards by bind address and host port; their
   * listening sockets close at once (flows already open go on). Returns
   * how many were removed. */
  engineForwardRemove(handle: EngineHandle, proto: 'tcp' | 'udp', forwards: { addr: string; port: number }[]): number;
  /** pasta: adds -T/-U forwards to a running engine, made in the
   * namespace: every socket is bound before any is watched, so a port in
   * use there throws and adds nothing. Returns how many. */
  engineNsForwardAdd(handle: EngineHandle, proto: 'tcp' | 'udp', forwards: NsForward[]): number;
  /** Closes -T/-U forwards by namespace address and port (not -T auto's);
   * spliced TCP connections go on. Returns how many were closed. */
  engineNsForwardRemove(handle: EngineHandle, proto: 'tcp' | 'udp', forwards: { addr: string; port: number }[]): number;
  /** A queue a decision worker serves (its id). */
  policyQueueCreate(): number;
  /** In a worker thread only (it blocks): the next request. A decision
   * is its token, the flow written into `words` (flow-words.ts); finished
   * flows an object; `null` after `timeoutMs` without one, `false` once
   * the engine is gone. */
  policyQueueNext(
    queue: number,
    timeoutMs: number,
    words: Uint32Array,
    token?: number,
    verdict?: Verdict | { error: string },
  ): number | { type: 'flow-end'; records: FlowRecord[] } | null | false;
  /** The worker's answer to the request `token`. */
  policyQueueAnswer(queue: number, token: number, verdict: Verdict | { error: string }): void;
  /** Joins the engine thread (at most 1 s); throws if it does not stop. */
  engineStop(handle: EngineHandle): void;
  engineStats(handle: EngineHandle): EngineStats;
  tsfnSelfTest(
    fn: (i: number) => Plain | Promise<Plain>,
    options: { count: number },
    onDone: (report: TsfnSelfTestReport) => void,
  ): void;
}

const PLATFORMS: Record<string, string> = {
  'linux-x64': 'linux-x64-gnu',
  'linux-arm64': 'linux-arm64-gnu',
};

function triple(): string {
  const t = PLATFORMS[`${process.platform}-${process.arch}`];
  if (!t) {
    throw new Error(`passt: no prebuilt engine for ${process.platform}-${process.arch}`);
  }
  return t;
}

/** A native file: built in this checkout (ts/ and dist/ sit one level
 * below the root), or shipped in the per-platform npm package. */
function locate(file: string): string {
  const local = join(dirname(fileURLToPath(import.meta.url)), '..', file);
  if (existsSync(local)) return local;
  const pkg = `passt-${triple()}`;
  return join(dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`)), file);
}

/** The namespace agent executable pasta mode runs. */
export function agentPath(): string {
  return locate('passt-nsagent');
}

let binding: Binding | undefined;

/** The addon, loaded on first use. */
export function native(): Binding {
  binding ??= createRequire(import.meta.url)(locate(`passt.${triple()}.node`)) as Binding;
  return binding;
}
