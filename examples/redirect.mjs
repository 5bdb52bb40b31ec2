// Redirects the guest's outbound TCP and UDP flows for one address and
// port to another, e.g. a database the guest expects at 10.0.0.1:5432 to
// a local one: PASST_REDIRECT_FROM (default 10.0.0.1:5432) and
// PASST_REDIRECT_TO (default 127.0.0.1:15432), ADDR:PORT or [ADDR]:PORT.
// Everything else is allowed as it is.
import { isIP } from 'node:net';

/** @param {string} name @param {string} text @returns {import('passt').Endpoint} */
function endpoint(name, text) {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(text);
  const addr = m?.[1] ?? m?.[2];
  const port = Number(m?.[3]);
  if (!addr || !isIP(addr) || !(port >= 1 && port <= 65535)) throw new Error(`${name}: '${text}' is not ADDR:PORT`);
  return { addr, port };
}

const from = endpoint('PASST_REDIRECT_FROM', process.env.PASST_REDIRECT_FROM ?? '10.0.0.1:5432');
const to = endpoint('PASST_REDIRECT_TO', process.env.PASST_REDIRECT_TO ?? '127.0.0.1:15432');

/** @type {import('passt').Policy} */
export default {
  outbound(flow) {
    // ICMP's "port" is the echo identifier: never a match.
    if (flow.proto !== 'icmp' && flow.dst.addr === from.addr && flow.dst.port === from.port) {
      return { dst: { addr: to.addr, port: to.port } };
    }
    return 'allow';
  },
};
