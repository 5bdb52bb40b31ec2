// What a -t/-u option forwards, as host ports to listen on, and what a
// -T/-U option forwards, as namespace ports: at start (from the parsed
// Config) and at run time (forward.add/remove and nsForward.add/remove,
// given the same grammar as a string).
import { readFileSync } from 'node:fs';
import type { NsForwardOption, PortForwardOption } from '../api.js';
import { ConfigError } from './errors.js';
import { expand, parsePortSpec, type PortForward } from './portspec.js';

/** The host ports a -t/-u option forwards (none for 'none' and 'auto'). */
export function hostForwards(t: PortForward): PortForwardOption[] | undefined {
  if (t.mode === 'spec') {
    return t.specs.flatMap((spec) => {
      // Exclusions alone forward everything else, as -t all does: what
      // can be bound, outside the ephemeral range.
      const everything = spec.rules.length === 0;
      const ports = [...expand(spec)].filter(([port]) => !everything || !ephemeral(port));
      return ports.map(([port, guestPort]) => ({
        ...(spec.addr ? { addr: spec.addr } : {}),
        ...(spec.iface ? { iface: spec.iface } : {}),
        port,
        guestPort,
        ...(everything || spec.implied ? { bestEffort: true } : {}),
      }));
    });
  }
  if (t.mode === 'all') {
    const all: PortForwardOption[] = [];
    for (let port = 1; port <= 65535; port++) if (!ephemeral(port)) all.push({ port, guestPort: port, bestEffort: true });
    return all;
  }
  return undefined;
}

/** One SPEC in the -t/-u grammar, for a running instance: 'auto' means
 * following the namespace, which only a start can ask for. `opt` names
 * the caller in errors. */
export function specForwards(opt: string, spec: string): PortForwardOption[] {
  const p = parsePortSpec(opt, spec);
  if (p === 'auto') throw new ConfigError(`${opt} ${spec}: not valid at run time`);
  if (p === 'none') return [];
  return hostForwards(p === 'all' ? { mode: 'all' } : { mode: 'spec', specs: [p] }) ?? [];
}

/** The namespace ports a -T/-U option forwards, and their host ports. */
export function nsForwards(t: PortForward): NsForwardOption[] {
  if (t.mode !== 'spec') return [];
  return t.specs.flatMap((spec) => [...expand(spec)].map(([port, hostPort]) => ({ ...(spec.addr ? { addr: spec.addr } : {}), port, hostPort })));
}

/** One -T/-U SPEC for a running pasta: ports, ranges, ADDR/PORTS and
 * NSPORT:HOSTPORT, as at start; 'auto' follows the host from the start
 * only, and interface binds and exclusions alone are not done for -T/-U
 * (refused at start too). */
export function nsSpecForwards(opt: string, spec: string): NsForwardOption[] {
  const p = parsePortSpec(opt, spec);
  if (p === 'none') return [];
  if (p === 'auto' || p === 'all') throw new ConfigError(`${opt} ${spec}: not valid at run time`);
  if (p.iface !== undefined) throw new ConfigError(`${opt} ${spec}: interface binds not supported`);
  if (p.rules.length === 0) throw new ConfigError(`${opt} ${spec}: exclusions alone (all ports) not supported`);
  return nsForwards({ mode: 'spec', specs: [p] });
}

let ephemeralRange: [number, number] | undefined;

/** Whether the kernel hands `port` out to clients (ip_local_port_range):
 * -t all leaves those alone (man passt: "non-ephemeral ports"). */
function ephemeral(port: number): boolean {
  if (!ephemeralRange) {
    let range: [number, number] = [32768, 60999];
    try {
      const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
      if (lo && hi && lo <= hi) range = [lo, hi];
    } catch {
      // Not Linux's procfs: the kernel's default range.
    }
    ephemeralRange = range;
  }
  return port >= ephemeralRange[0] && port <= ephemeralRange[1];
}
