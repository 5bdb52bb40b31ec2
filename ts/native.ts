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
}

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
  /** Reads the host's interfaces and routes (rtnetlink); `ifname4/6` force the interface. */
  hostDiscover(options?: { ifname4?: string; ifname6?: string }): HostInfo;
  engineStart(): EngineHandle;
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

function locate(): string {
  const triple = PLATFORMS[`${process.platform}-${process.arch}`];
  if (!triple) {
    throw new Error(`passt: no prebuilt engine for ${process.platform}-${process.arch}`);
  }
  const file = `passt.${triple}.node`;
  // A build in this checkout (ts/ or dist/ are one level below the root) ...
  const local = join(dirname(fileURLToPath(import.meta.url)), '..', file);
  if (existsSync(local)) return local;
  // ... or the per-platform npm package.
  return createRequire(import.meta.url).resolve(`passt-${triple}/${file}`);
}

let binding: Binding | undefined;

/** The addon, loaded on first use. */
export function native(): Binding {
  binding ??= createRequire(import.meta.url)(locate()) as Binding;
  return binding;
}
