// The decision worker: a worker thread that loads a policy module and
// answers the engine's requests from a queue it waits on in a blocking
// native call. A sleeping thread wakes in microseconds; the main thread's
// event loop, through a threadsafe function, takes tens (33 µs at p50
// measured from asking to the hook's first line), once per new flow.
// Started by startPolicyWorker (policy.ts); it ends when the engine does.
import { parentPort, workerData } from 'node:worker_threads';
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
  let pending = 0;
  for (;;) {
    // Promises in flight need this thread's event loop: poll, then yield.
    const r = native().policyQueueNext(queue, pending > 0 ? 0 : 100);
    if (r === false) break;
    if (r === null) {
      if (pending > 0) await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    if (r.type === 'flow-end') {
      handle(r);
      continue;
    }
    const token = r.token;
    const answer = (v: unknown) => native().policyQueueAnswer(queue, token, v as never);
    const fail = (e: unknown) => answer({ error: message(e) });
    try {
      const v = handle({ type: r.type, flow: r.flow });
      if (isThenable(v)) {
        pending++;
        Promise.resolve(v)
          .then(answer, fail)
          .finally(() => pending--);
      } else {
        answer(v);
      }
    } catch (e) {
      fail(e);
    }
  }
}
