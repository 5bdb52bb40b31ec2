// Logs every finished flow as one JSON line (the whole FlowRecord) to the
// file named by PASST_FLOW_LOG, appending, or to standard error. Flows
// are not filtered: there is no decision hook, so the engine asks none.
import { appendFileSync } from 'node:fs';

const file = process.env.PASST_FLOW_LOG;

/** @type {import('passt').Policy} */
export default {
  flowEnd(records) {
    const lines = records.map((r) => `${JSON.stringify(r)}\n`).join('');
    // Synchronous: the process may exit right after the last batch.
    if (file) appendFileSync(file, lines);
    else process.stderr.write(lines);
  },
};
