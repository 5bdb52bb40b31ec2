// The decision worker: a worker thread that loads a policy module and
// answers the engine's requests from a queue it waits on in a blocking
// native call. A sleeping thread wakes in microseconds; the main thread's
// event loop, through a threadsafe function, takes tens (33 µs at p50
// measured from asking to the hook's first line), once per new flow.
// The flow comes as words in a Uint32Array (flow-words.ts), not as an
// object the addon builds: that was a third of the round trip. A
// synchronous answer goes back with the next wait (policyQueueNext), so
// that the thread sleeps as soon as the engine is woken.
// Started by startPolicyWorker (policy.ts); it ends when the engine does.
import { parentPort, workerData } from 'node:worker_threads';
import { FLOW_WORDS, flowFromWords } from './flow-words.js';
import { native } from './native.js';
import { isThenable, loadPolicy, message, policyHandler, type Policy } from './policy.js';

const { file, queue } = workerData as { file: string; queue: number };
const post = (m: unknown) => parentPort?.postMessage(m);

let policy: Policy | undefined;
try {
  policy = await loadPolicy(file);
} catch (e) {
  post({ type: 'error', message: message(e) });
}

if (policy) {
  post({ type: 'ready', hooks: { outbound: !!policy.outbound, inbound: !!policy.inbound, flowEnd: !!policy.flowEnd } });
  const handle = policyHandler(policy, { onError: (m) => post({ type: 'warning', message: m }) });
  const n = native();
  const words = new Uint32Array(FLOW_WORDS);
  let pending = 0;
  // Turns of the event loop since a promise was last settled or a request
  // came. Promises in flight need this thread's event loop, so the queue
  // is polled between turns: without waiting at first (an answer may be
  // near), then waiting up to 1 ms a time, so that a hook awaiting
  // something slow does not keep a core busy (it did: 3 s of CPU for a
  // 3 s hook) and its timers and I/O run at most 1 ms late.
  let idle = 0;
  // A synchronous answer goes with the next policyQueueNext, which files
  // it before it waits: 0 when there is none.
  let token = 0;
  let verdict: unknown;
  for (;;) {
    const wait = pending === 0 ? 100 : idle < 64 ? 0 : 1;
    const r = n.policyQueueNext(queue, wait, words, token, verdict as never);
    token = 0;
    verdict = undefined;
    if (r === false) break;
    if (r === null) {
      if (pending > 0) {
        const before = pending;
        await new Promise((resolve) => setImmediate(resolve));
        idle = pending < before ? 0 : idle + 1;
      }
      continue;
    }
    idle = 0;
    if (typeof r !== 'number') {
      handle(r);
      continue;
    }
    const flow = flowFromWords(words);
    let v: unknown;
    try {
      v = handle({ type: flow.direction, flow });
    } catch (e) {
      v = { error: message(e) };
    }
    if (!isThenable(v)) {
      token = r;
      verdict = v;
      continue;
    }
    const answer = (x: unknown) => n.policyQueueAnswer(queue, r, x as never);
    pending++;
    v.then(
      (x) => (pending--, answer(x)),
      (e) => (pending--, answer({ error: message(e) })),
    );
    // A hook that awaits nothing slow answers a few microtask hops
    // later: take them now rather than after a turn of the event loop.
    for (let hop = 0; hop < 8 && pending > 0; hop++) await null;
  }
}
