// A port allow-list firewall: the guest may open TCP and UDP flows only
// to the ports in PASST_ALLOW_PORTS (comma-separated, default
// "53,80,443"); pings go through; anything else is refused (TCP: reset,
// UDP: ICMP administratively prohibited). Inbound flows are left alone:
// -t/-u already say which ones exist.
const spec = process.env.PASST_ALLOW_PORTS ?? '53,80,443';
const allowed = new Set(
  spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const n = Number(s);
      // A typo must not quietly close a port: refuse to load instead.
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`PASST_ALLOW_PORTS: '${s}' is not a port`);
      return n;
    }),
);

/** @type {import('passt').Policy} */
export default {
  outbound(flow) {
    if (flow.proto === 'icmp') return 'allow';
    return allowed.has(flow.dst.port) ? 'allow' : 'reject';
  },
};
