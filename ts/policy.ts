// Per-flow policy hooks in JS: what a policy module looks like, loading
// one from a file (--policy), the engine flags a policy needs, and the
// `onPolicy` function that answers the engine's requests with it.
import { existsSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ConfigError } from './config/errors.js';
import { native, type BindingConfig, type Endpoint, type FlowInfo, type FlowRecord, type PolicyRequest, type Verdict } from './native.js';

/** A hook's answer: 'allow', 'reject', or allow with a rewrite. */
export type PolicyAnswer = Verdict;

/** A flow as the engine opened it: `mapped` is the other side's view. */
export type OpenedFlow = FlowInfo & { mapped: { src: Endpoint; dst: Endpoint } };

/** Hooks a policy may have; the engine asks only for those present. A
 * decision hook that throws, rejects, or misses the timeout leaves the
 * flow allowed, with a warning. */
export interface Policy {
  outbound?(flow: FlowInfo): PolicyAnswer | Promise<PolicyAnswer>;
  inbound?(flow: FlowInfo): PolicyAnswer | Promise<PolicyAnswer>;
  /** Finished flows, in batches. */
  flowEnd?(records: FlowRecord[]): void | Promise<void>;
}

const HOOKS = ['outbound', 'inbound', 'flowEnd'] as const;
const EXTENSIONS = ['.js', '.mjs', '.ts', '.mts'];

function hasHook(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && HOOKS.some((h) => h in v);
}

/** Imports a policy module: its default export, or else its named
 * `outbound`/`inbound`/`flowEnd` exports. Errors are one line naming
 * --policy and the file. */
export async function loadPolicy(file: string): Promise<Policy> {
  const where = `--policy ${file}`;
  const ext = extname(file);
  if (!EXTENSIONS.includes(ext)) throw new ConfigError(`${where}: not a .js, .mjs, .ts or .mts file`);
  const abs = resolve(file);
  if (!existsSync(abs)) throw new ConfigError(`${where}: no such file`);
  const url = pathToFileURL(abs).href;
  let mod: Record<string, unknown>;
  try {
    if (ext === '.ts' || ext === '.mts') {
      // Loaded on demand: the transpiler costs startup time nobody else should pay.
      const { tsImport } = await import('tsx/esm/api');
      mod = (await tsImport(url, import.meta.url)) as Record<string, unknown>;
    } else {
      mod = (await import(url)) as Record<string, unknown>;
    }
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new Error(`${where}: ${why.split('\n')[0]}`, { cause: e });
  }
  // A TS module compiled as CommonJS arrives with its default wrapped once more.
  let found: Record<string, unknown> | undefined = hasHook(mod.default) ? mod.default : undefined;
  if (!found && typeof mod.default === 'object' && mod.default !== null) {
    const inner = (mod.default as Record<string, unknown>).default;
    if (hasHook(inner)) found = inner;
  }
  if (!found && hasHook(mod)) {
    found = {};
    for (const h of HOOKS) if (mod[h] !== undefined) found[h] = mod[h];
  }
  if (!found) throw new ConfigError(`${where}: exports no outbound, inbound or flowEnd hook`);
  for (const h of HOOKS) {
    if (found[h] !== undefined && typeof found[h] !== 'function') throw new ConfigError(`${where}: ${h} is not a function`);
  }
  return found as Policy;
}

export interface PolicyFlagOptions {
  policy?: Policy;
  /** true: flow-open and flow-end events; 'end': flow-end only. */
  flowEvents?: boolean | 'end';
  timeoutMs?: number;
}

/** What the engine should ask JS for: nothing a hook or listener does not
 * need, since each request crosses threads. Undefined: ask nothing. */
export function policyFlags(o: PolicyFlagOptions): BindingConfig['policy'] {
  const p = o.policy;
  const flags: NonNullable<BindingConfig['policy']> = {};
  if (p?.outbound) flags.outbound = true;
  if (p?.inbound) flags.inbound = true;
  if (o.flowEvents === true) flags.flowOpen = true;
  if (p?.flowEnd || o.flowEvents) flags.flowEnd = true;
  if (!Object.keys(flags).length) return undefined;
  if (o.timeoutMs !== undefined) flags.timeoutMs = o.timeoutMs;
  return flags;
}

export interface PolicyHandlerOptions {
  onFlowOpen?: (flows: OpenedFlow[]) => void;
  onFlowEnd?: (records: FlowRecord[]) => void;
  /** A flowEnd hook's failure (no flow depends on it, so only reported). */
  onError: (msg: string) => void;
}

type OnPolicy = (r: PolicyRequest) => Verdict | Promise<Verdict> | void;

export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (typeof v === 'object' || typeof v === 'function') && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

function describe(v: unknown): string {
  if (v === undefined) return 'undefined';
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Rust validates a verdict's fields; this only catches the common
 * mistakes (no return, a boolean) with a message naming the hook. */
function checked(hook: string, v: unknown): Verdict {
  if (v === 'allow' || v === 'reject' || (typeof v === 'object' && v !== null && !Array.isArray(v))) return v as Verdict;
  throw new Error(`policy ${hook} hook returned ${describe(v)}, not 'allow', 'reject' or a rewrite`);
}

export function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** The `onPolicy` function for engineStart. A decision hook's throw or
 * rejection goes back to Rust, which reports it and allows the flow. */
export function policyHandler(policy: Policy, opts: PolicyHandlerOptions): OnPolicy {
  const decide = (hook: 'outbound' | 'inbound', flow: FlowInfo): Verdict | Promise<Verdict> => {
    if (!policy[hook]) return 'allow';
    const v: unknown = policy[hook](flow);
    return isThenable(v) ? Promise.resolve(v).then((x) => checked(hook, x)) : checked(hook, v);
  };
  // A listener's throw must not travel back to Rust as the batch's answer.
  const notify = <T>(what: string, fn: ((x: T) => void) | undefined, x: T): void => {
    try {
      fn?.(x);
    } catch (e) {
      opts.onError(`${what} listener: ${message(e)}`);
    }
  };
  const flowEnd = (records: FlowRecord[]): void => {
    notify('flow-end', opts.onFlowEnd, records);
    if (!policy.flowEnd) return;
    const fail = (e: unknown) => opts.onError(`policy flowEnd hook: ${message(e)}`);
    try {
      const r: unknown = policy.flowEnd(records);
      if (isThenable(r)) Promise.resolve(r).catch(fail);
    } catch (e) {
      fail(e);
    }
  };
  return (r) => {
    switch (r.type) {
      case 'outbound':
      case 'inbound':
        return decide(r.type, r.flow);
      case 'flow-open':
        notify('flow-open', opts.onFlowOpen, r.flows);
        return;
      case 'flow-end':
        flowEnd(r.records);
        return;
    }
  };
}

/** Which hooks a policy module has (as its worker reports them). */
export interface PolicyHooks {
  outbound: boolean;
  inbound: boolean;
  flowEnd: boolean;
}

/** A decision worker serving `queue` with the module in `file`. */
export interface PolicyWorker {
  queue: number;
  hooks: PolicyHooks;
  /** Warnings the worker's hooks raised (flowEnd failures). */
  onWarning(listener: (message: string) => void): void;
}

/** Starts a decision worker (policy-worker.ts) for the module in `file`;
 * resolves once the module is loaded, with which hooks it has; rejects
 * with the load error (one line naming --policy and the file). The
 * worker never keeps the process alive and ends with its engine. */
export function startPolicyWorker(file: string): Promise<PolicyWorker> {
  const queue = native().policyQueueCreate();
  // Compiled next to this file; under tsx (tests) the .ts one.
  const here = fileURLToPath(import.meta.url);
  const script = here.endsWith('.ts') ? here.replace(/policy\.ts$/, 'policy-worker.ts') : here.replace(/policy\.js$/, 'policy-worker.js');
  const worker = new Worker(script, {
    workerData: { file, queue },
    ...(script.endsWith('.ts') ? { execArgv: ['--import=tsx'] } : {}),
  });
  worker.unref();
  const listeners: ((m: string) => void)[] = [];
  return new Promise((ok, fail) => {
    worker.on('message', (m: { type: string; message?: string; hooks?: PolicyHooks }) => {
      if (m.type === 'ready' && m.hooks) ok({ queue, hooks: m.hooks, onWarning: (l) => listeners.push(l) });
      else if (m.type === 'error') fail(new ConfigError(m.message ?? `--policy ${file}: cannot load`));
      else if (m.type === 'warning') listeners.forEach((l) => l(m.message ?? ''));
    });
    worker.on('error', (e) => fail(new ConfigError(`--policy ${file}: ${e.message}`)));
  });
}
