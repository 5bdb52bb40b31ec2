// Loads the addon in a worker thread (or a plain process: argv[2] = count)
// and runs a threadsafe-function self-test in it.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { join, dirname } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
const binding = createRequire(import.meta.url)(join(root, `passt.linux-${arch}-gnu.node`));

const count = isMainThread ? Number(process.argv[2]) : workerData.count;
if (!isMainThread && workerData.noWait) {
  binding.tsfnSelfTest((i) => i, { count }, () => {});
  parentPort.postMessage('started');
} else {
  binding.tsfnSelfTest((i) => i, { count }, (report) => {
    if (isMainThread) console.log(`replies=${report.replies}`);
    else parentPort.postMessage(report);
  });
}
