// Runs pasta through the programmatic API with the options given as JSON
// in argv[2] (inside ../shared/testnet/fakehost.sh), then prints one line
// `PASTA-RESULT {...}` on stderr: the command's status and the engine's
// counters.
import { startPasta } from '../../ts/index.js';

const options = JSON.parse(process.argv[2] ?? '{}');
const pasta = await startPasta(options);
const status = await pasta.exited;
const stats = pasta.stats();
pasta.stop();
process.stderr.write(`PASTA-RESULT ${JSON.stringify({ status, stats, plan: pasta.plan })}\n`);
process.exit(0);
