// The port-forwarding grammar of -t/-u/-T/-U (man passt, man pasta):
//
//   spec  := 'none' | 'all' | 'auto' | [bind '/'] items
//   bind  := [ADDR] ['%' IFACE]
//   items := item (',' item)*
//   item  := '~' range | range [':' range]
//   range := PORT | PORT '-' PORT          (1 <= PORT <= 65535)
//
// Exclusions alone mean "everything else". A target range must be as
// long as its source range. Errors are ConfigErrors naming the option.
import { isIP } from 'node:net';
import { ConfigError } from './errors.js';

export interface PortRange {
  first: number;
  last: number;
}

/** Ports first..last forward to toFirst.. (same length). */
export interface PortRule extends PortRange {
  toFirst: number;
}

/** One occurrence of a port option. */
export interface PortSpec {
  /** Bind address (IPv4 or IPv6), if any. */
  addr?: string;
  /** Bind interface (`%IFACE`), if any. */
  iface?: string;
  /** Ports forwarded; empty with exclusions means all ports. */
  rules: PortRule[];
  excluded: PortRange[];
  /** Implied by -t for -u (man passt: "UDP ports with numbers
   * corresponding to forwarded TCP port numbers are forwarded too"): a
   * port that cannot be bound is skipped, not an error. */
  implied?: true;
}

export type PortForward =
  | { mode: 'none' }
  | { mode: 'all' }
  | { mode: 'auto' }
  | { mode: 'spec'; specs: PortSpec[] };

function port(opt: string, spec: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new ConfigError(`${opt} ${spec}: '${text}' is not a port number`);
  const n = Number(text);
  if (n < 1 || n > 65535) throw new ConfigError(`${opt} ${spec}: port ${text} out of range (1-65535)`);
  return n;
}

function range(opt: string, spec: string, text: string): PortRange {
  const m = /^([^-]*)(?:-(.*))?$/.exec(text);
  if (!text || !m) throw new ConfigError(`${opt} ${spec}: empty port range`);
  const first = port(opt, spec, m[1]!);
  const last = m[2] === undefined ? first : port(opt, spec, m[2]);
  if (last < first) throw new ConfigError(`${opt} ${spec}: range ${text} is reversed`);
  return { first, last };
}

/** Parses one occurrence of a port option (`opt` names it in errors). */
export function parsePortSpec(opt: string, spec: string): PortSpec | 'none' | 'all' | 'auto' {
  if (spec === 'none' || spec === 'all' || spec === 'auto') return spec;
  let list = spec;
  const out: PortSpec = { rules: [], excluded: [] };
  const slash = spec.lastIndexOf('/');
  if (slash >= 0) {
    let bind = spec.slice(0, slash);
    list = spec.slice(slash + 1);
    const pct = bind.indexOf('%');
    if (pct >= 0) {
      const iface = bind.slice(pct + 1);
      if (!iface) throw new ConfigError(`${opt} ${spec}: '%' without an interface name`);
      if (iface.length > 15 || /[\s/]/.test(iface)) throw new ConfigError(`${opt} ${spec}: bad interface name '${iface}'`);
      out.iface = iface;
      bind = bind.slice(0, pct);
    }
    if (bind) {
      if (!isIP(bind)) throw new ConfigError(`${opt} ${spec}: '${bind}' is not an IP address`);
      out.addr = bind;
    }
    if (!out.addr && !out.iface) throw new ConfigError(`${opt} ${spec}: empty address before '/'`);
  }
  if (!list) throw new ConfigError(`${opt} ${spec}: no ports given`);
  for (const item of list.split(',')) {
    if (!item) throw new ConfigError(`${opt} ${spec}: empty item in port list`);
    if (item.startsWith('~')) {
      out.excluded.push(range(opt, spec, item.slice(1)));
      continue;
    }
    const [from, to, extra] = item.split(':');
    if (extra !== undefined) throw new ConfigError(`${opt} ${spec}: '${item}' has more than one ':'`);
    const src = range(opt, spec, from!);
    let toFirst = src.first;
    if (to !== undefined) {
      const dst = range(opt, spec, to);
      const a = src.last - src.first + 1;
      const b = dst.last - dst.first + 1;
      if (a !== b) throw new ConfigError(`${opt} ${spec}: range lengths differ (${a} vs ${b})`);
      toFirst = dst.first;
    }
    out.rules.push({ ...src, toFirst });
  }
  return out;
}

/** Combines every occurrence of one port option. */
export function parsePortOption(opt: string, values: string[], allowed: ('all' | 'auto')[]): PortForward {
  const parsed = values.map((v) => parsePortSpec(opt, v));
  const keywords = parsed.filter((p): p is 'none' | 'all' | 'auto' => typeof p === 'string');
  for (const k of keywords) {
    if (k !== 'none' && !allowed.includes(k)) throw new ConfigError(`${opt} ${k}: not valid in this mode`);
  }
  if (keywords.length && parsed.length > 1) {
    throw new ConfigError(`${opt} ${keywords[0]}: can't be combined with other ${opt} options`);
  }
  const k = keywords[0];
  if (k) return { mode: k };
  return { mode: 'spec', specs: parsed as PortSpec[] };
}

/** Every (host port -> guest port) a spec forwards, for one bind. */
export function expand(spec: PortSpec): Map<number, number> {
  const map = new Map<number, number>();
  const rules = spec.rules.length ? spec.rules : [{ first: 1, last: 65535, toFirst: 1 }];
  for (const r of rules) {
    for (let p = r.first; p <= r.last; p++) map.set(p, r.toFirst + (p - r.first));
  }
  for (const x of spec.excluded) {
    for (let p = x.first; p <= x.last; p++) map.delete(p);
  }
  return map;
}
