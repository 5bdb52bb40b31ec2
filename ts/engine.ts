// One running engine, as seen from JS: started from a BindingConfig, it
// reports its events and ends on its own (guest gone for good, command
// exited, error) or when stopped.
import { EventEmitter } from 'node:events';
import { native, type BindingConfig, type EngineEvent, type EngineHandle, type EngineStats } from './native.js';

export class Engine extends EventEmitter {
  readonly #handle: EngineHandle;
  #stopped = false;
  /** The counters as they were when the engine was stopped. */
  #final: EngineStats | undefined;
  /** Resolves with the reason once the engine has stopped, whoever stopped it. */
  readonly done: Promise<string>;

  private constructor(config: BindingConfig) {
    super();
    let finish: (reason: string) => void = () => {};
    this.done = new Promise((resolve) => (finish = resolve));
    this.#handle = native().engineStart(config, (event: EngineEvent) => {
      this.emit('event', event);
      this.emit(event.type, event);
      if (event.type === 'stopped') {
        this.#release();
        finish(event.reason);
      }
    });
    this.once('stop-requested', () => finish('stopped'));
  }

  /** Starts an engine; throws if it cannot (socket in use, namespace...). */
  static start(config: BindingConfig): Engine {
    return new Engine(config);
  }

  /** The engine's counters; after a stop, their final values. */
  stats(): EngineStats {
    return this.#final ?? native().engineStats(this.#handle);
  }

  /** Stops the engine and joins its thread (at most 1 s). */
  stop(): void {
    this.#release();
    this.emit('stop-requested');
  }

  #release(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#final = { ...native().engineStats(this.#handle), running: false };
    native().engineStop(this.#handle);
  }
}
