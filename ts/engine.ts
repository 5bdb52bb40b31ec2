// One running engine, as seen from JS: started from a BindingConfig, it
// reports its events and ends on its own (guest gone for good, command
// exited, error) or when stopped. It alone holds the native handle, so
// runtime changes (forwards) go through it.
import { EventEmitter } from 'node:events';
import { native, type BindingConfig, type EngineEvent, type EngineHandle, type EngineStats, type Forward, type NsForward } from './native.js';
import { policyHandler, type Policy } from './policy.js';

/** Events: every EngineEvent under its `type` (and all of them under
 * 'event'); with flow events asked for, 'flow-open' once per opened flow
 * (FlowInfo and `mapped`) and 'flow-end' once per FlowRecord. A flowEnd
 * hook's failure comes as a 'warning'. */
export class Engine extends EventEmitter {
  readonly #handle: EngineHandle;
  #stopped = false;
  /** The counters as they were when the engine was stopped. */
  #final: EngineStats | undefined;
  /** Resolves with the reason once the engine has stopped, whoever stopped it. */
  readonly done: Promise<string>;

  private constructor(config: BindingConfig, policy: Policy, events: boolean) {
    super();
    let finish: (reason: string) => void = () => {};
    this.done = new Promise((resolve) => (finish = resolve));
    const onEvent = (event: EngineEvent) => {
      this.emit('event', event);
      this.emit(event.type, event);
      if (event.type === 'stopped') {
        this.#release();
        // The engine's last flow records went out just before this event,
        // through the policy callback's own queue: let them land first.
        setTimeout(() => finish(event.reason), 20);
      }
    };
    // Without policy flags the engine asks nothing: no callback to keep;
    // with a decision worker, only for flow events someone listens to.
    const onPolicy = config.policy && events
      ? policyHandler(policy, {
          onFlowOpen: (flows) => flows.forEach((f) => this.emit('flow-open', f)),
          onFlowEnd: (records) => records.forEach((r) => this.emit('flow-end', r)),
          onError: (message) => onEvent({ type: 'warning', message }),
        })
      : undefined;
    this.#handle = onPolicy ? native().engineStart(config, onEvent, onPolicy) : native().engineStart(config, onEvent);
    this.once('stop-requested', () => finish('stopped'));
  }

  /** Starts an engine; throws if it cannot (socket in use, namespace...).
   * `policy` answers the requests `config.policy` turns on. */
  static start(config: BindingConfig, policy: Policy = {}, events = true): Engine {
    return new Engine(config, policy, events);
  }

  /** The engine's counters; after a stop, their final values. */
  stats(): EngineStats {
    return this.#final ?? native().engineStats(this.#handle);
  }

  /** Adds listening forwards; all or none (a port in use throws). */
  forwardAdd(proto: 'tcp' | 'udp', forwards: Forward[]): void {
    this.#running();
    native().engineForwardAdd(this.#handle, proto, forwards);
  }

  /** Closes listening forwards by bind address and port; returns how many. */
  forwardRemove(proto: 'tcp' | 'udp', forwards: { addr: string; port: number }[]): number {
    this.#running();
    return native().engineForwardRemove(this.#handle, proto, forwards);
  }

  /** pasta: adds -T/-U forwards (in the namespace); all or none. */
  nsForwardAdd(proto: 'tcp' | 'udp', forwards: NsForward[]): number {
    this.#running();
    return native().engineNsForwardAdd(this.#handle, proto, forwards);
  }

  /** pasta: closes -T/-U forwards by namespace address and port. */
  nsForwardRemove(proto: 'tcp' | 'udp', forwards: { addr: string; port: number }[]): number {
    this.#running();
    return native().engineNsForwardRemove(this.#handle, proto, forwards);
  }

  /** Stops the engine and joins its thread (at most 1 s). */
  stop(): void {
    this.#release();
    this.emit('stop-requested');
  }

  #running(): void {
    if (this.#stopped) throw new Error('passt: the engine has stopped');
  }

  #release(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#final = { ...native().engineStats(this.#handle), running: false };
    native().engineStop(this.#handle);
  }
}
