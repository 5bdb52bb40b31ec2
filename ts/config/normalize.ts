// argv -> Config: recognises every passt/pasta option (yargs' parser),
// validates each value, applies the man page's defaults, and refuses what
// this build cannot do yet. Pure: no I/O, so tests call it directly.
import { isIP, isIPv4 } from 'node:net';
import { Parser } from 'yargs/helpers';
import { LOG_SIZE_MIN } from '../log.js';
import { ConfigError } from './errors.js';
import { BY_LONG, BY_SHORT, OPTIONS, spelled, type Mode, type OptionDef } from './options.js';
import { parsePortOption, type PortForward } from './portspec.js';
import type { Config, PastaTarget } from './types.js';

export { ConfigError };

/** What the command line asked for: run, or print help or the version. */
export type Parsed = { action: 'run'; config: Config } | { action: 'help' } | { action: 'version' };

/** Each option's values in command-line order, and how it was spelled. */
interface Given {
  def: OptionDef;
  values: string[];
  short: boolean;
}

function tokenize(mode: Mode, argv: string[]): { given: Map<string, Given>; rest: string[] } {
  const aliases: Record<string, string[]> = {};
  const strings: string[] = [];
  const booleans: string[] = [];
  for (const o of OPTIONS) {
    if (o.short) aliases[o.long] = [o.short];
    (o.value ? strings : booleans).push(o.long);
  }
  const r = Parser.detailed(argv, {
    alias: aliases,
    string: strings,
    boolean: booleans,
    configuration: {
      'camel-case-expansion': false,
      'boolean-negation': false,
      'halt-at-non-option': true,
      'duplicate-arguments-array': true,
      'dot-notation': false,
      'parse-numbers': false,
      'parse-positional-numbers': false,
      'short-option-groups': true,
      'strip-aliased': true,
      'greedy-arrays': false,
    },
  });
  if (r.error) throw new ConfigError(r.error.message);
  // Which spelling each option had on the command line, for messages.
  const shortUsed = new Set<string>();
  for (const a of argv) {
    if (a === '--') break;
    if (/^-[^-]/.test(a)) for (const c of a.slice(1)) shortUsed.add(c);
  }
  const given = new Map<string, Given>();
  for (const [key, raw] of Object.entries(r.argv)) {
    if (key === '_' || key === '$0') continue;
    const def = BY_LONG.get(key) ?? BY_SHORT.get(key);
    if (!def) {
      throw new ConfigError(`unrecognized option '${key.length === 1 ? '-' : '--'}${key}'`);
    }
    if (!def.modes.includes(mode)) {
      throw new ConfigError(`${spelled(def, shortUsed.has(def.short ?? ''))}: ${def.modes[0]}-only option`);
    }
    const list = (Array.isArray(raw) ? raw : [raw]).map(String);
    if (def.value && list.some((v) => v === '' || v === 'true')) {
      throw new ConfigError(`option '${spelled(def, shortUsed.has(def.short ?? ''))}' requires an argument`);
    }
    if (!def.value && list.some((v) => v === 'false')) continue;
    given.set(def.long, { def, values: list, short: shortUsed.has(def.short ?? '') });
  }
  return { given, rest: r.argv._.map(String) };
}

const MULTI = new Set(['map-host-loopback', 'map-guest-addr', 'address', 'gateway', 'outbound', 'dns', 'dns-forward', 'dns-host', 'tcp-ports', 'udp-ports', 'tcp-ns', 'udp-ns']);

export function parseArgs(mode: Mode, argv: string[]): Parsed {
  const { given, rest } = tokenize(mode, argv);
  const name = (long: string) => {
    const g = given.get(long);
    return g ? spelled(g.def, g.short) : `--${long}`;
  };
  if (given.has('help')) return { action: 'help' };
  if (given.has('version')) return { action: 'version' };

  for (const [long, g] of given) {
    if (!MULTI.has(long) && g.values.length > 1 && g.def.value) {
      throw new ConfigError(`${name(long)}: given more than once`);
    }
    if (g.def.status === 'unsupported') throw new ConfigError(`${name(long)}: not supported`);
  }
  const one = (long: string): string | undefined => given.get(long)?.values[0];
  const all = (long: string): string[] => given.get(long)?.values ?? [];
  const flag = (long: string): boolean => given.has(long);

  if (flag('ipv4-only') && flag('ipv6-only')) throw new ConfigError(`${name('ipv4-only')} and ${name('ipv6-only')} are mutually exclusive`);

  const guest: Config['guest'] = {
    ipv4: !flag('ipv6-only'),
    ipv6: !flag('ipv4-only'),
    noMapGw: flag('no-map-gw'),
    dhcpDns: mode === 'passt' ? !flag('no-dhcp-dns') : flag('dhcp-dns'),
    dhcpSearch: mode === 'passt' ? !flag('no-dhcp-search') : flag('dhcp-search'),
    disabled: {
      tcp: flag('no-tcp'),
      udp: flag('no-udp'),
      icmp: flag('no-icmp'),
      dhcp: flag('no-dhcp'),
      ndp: flag('no-ndp'),
      dhcpv6: flag('no-dhcpv6'),
      ra: flag('no-ra'),
    },
  };
  // Options taking one address per family.
  for (const [long, v4key, v6key] of [
    ['address', 'address4', 'address6'],
    ['gateway', 'gateway4', 'gateway6'],
    ['outbound', 'outbound4', 'outbound6'],
    ['dns-forward', 'dnsForward4', 'dnsForward6'],
    ['dns-host', 'dnsHost4', 'dnsHost6'],
    ['map-guest-addr', 'mapGuestAddr4', 'mapGuestAddr6'],
  ] as const) {
    for (const v of all(long)) {
      const fam = isIP(v);
      if (!fam) throw new ConfigError(`${name(long)} ${v}: not an IPv4 or IPv6 address`);
      const key = fam === 4 ? v4key : v6key;
      if (guest[key] !== undefined) throw new ConfigError(`${name(long)} ${v}: an IPv${fam} address was already given`);
      guest[key] = v;
    }
  }
  // --map-host-loopback: one address per family, the last given wins;
  // 'none' maps nothing (as --no-map-gw).
  for (const v of all('map-host-loopback')) {
    if (v === 'none') {
      guest.noMapGw = true;
      continue;
    }
    const fam = isIP(v);
    if (!fam) throw new ConfigError(`${name('map-host-loopback')} ${v}: not an IPv4 or IPv6 address`);
    if (fam === 4) guest.mapHostLoopback4 = v;
    else guest.mapHostLoopback6 = v;
  }
  const mask = one('netmask');
  if (mask !== undefined) guest.prefixLen4 = parseNetmask(name('netmask'), mask);
  const mac = one('mac-addr');
  if (mac !== undefined) guest.mac = parseMac(name('mac-addr'), mac);
  const mtu = one('mtu');
  if (mtu !== undefined) guest.mtu = intIn(name('mtu'), mtu, 68, 65520);
  const hostname = one('hostname');
  if (hostname !== undefined) {
    // DHCP option 12 holds 1 to 255 bytes; a name is letters, digits, dots and dashes.
    if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,254}$/.test(hostname)) throw new ConfigError(`${name('hostname')} ${hostname}: not a host name`);
    guest.hostname = hostname;
  }
  const dns = all('dns');
  if (dns.length) {
    if (dns.includes('none')) {
      if (dns.length > 1) throw new ConfigError(`${name('dns')} none: can't be combined with addresses`);
      guest.dns = [];
    } else {
      for (const d of dns) if (!isIP(d)) throw new ConfigError(`${name('dns')} ${d}: not an IPv4 or IPv6 address`);
      guest.dns = dns;
    }
  }
  const search = one('search');
  if (search !== undefined) guest.search = search === 'none' ? [] : search.split(/\s+/).filter(Boolean);
  for (const a of [guest.address4, guest.gateway4]) if (a && !guest.ipv4) throw new ConfigError(`${name('ipv6-only')}: IPv4 address ${a} given`);
  for (const a of [guest.address6, guest.gateway6]) if (a && !guest.ipv6) throw new ConfigError(`${name('ipv4-only')}: IPv6 address ${a} given`);

  const forwardDefault: PortForward = { mode: mode === 'pasta' ? 'auto' : 'none' };
  const ports = (long: string): PortForward => {
    const v = all(long);
    if (!v.length) return forwardDefault;
    return parsePortOption(name(long), v, mode === 'pasta' ? ['auto'] : ['all']);
  };
  const forward = { tcp: ports('tcp-ports'), udp: ports('udp-ports'), tcpNs: ports('tcp-ns'), udpNs: ports('udp-ns') };
  // Without -u, the ports -t lists are forwarded for UDP too, to the
  // same port number (man passt, man pasta: "without, however, any port
  // translation"), where they can be bound.
  if (!all('udp-ports').length) forward.udp = udpFromTcp(forward.tcp) ?? forward.udp;

  const config: Config = {
    mode,
    log: {
      debug: flag('debug') || flag('trace'),
      trace: flag('trace'),
      quiet: flag('quiet'),
      stderr: flag('stderr'),
      stats: flag('stats'),
      flows: flag('log-flows'),
      format: logFormat(name('log-format'), one('log-format')),
    },
    foreground: flag('foreground'),
    guest,
    forward,
    passt: { oneOff: flag('one-off') },
    pasta: { target: { kind: 'command', argv: [] }, configNet: flag('config-net'), netnsOnly: flag('netns-only'), noSplice: flag('no-splice'), noNetnsQuit: flag('no-netns-quit') },
  };
  if (flag('host-lo-to-ns-lo') && flag('no-splice')) throw new ConfigError(`${name('host-lo-to-ns-lo')}: needs the splice path that ${name('no-splice')} turns off`);
  const set = <K extends 'pidFile' | 'pcap' | 'interface' | 'outboundIf4' | 'outboundIf6'>(key: K, long: string) => {
    const v = one(long);
    if (v !== undefined) config[key] = v;
  };
  set('pidFile', 'pid');
  set('pcap', 'pcap');
  set('interface', 'interface');
  set('outboundIf4', 'outbound-if4');
  set('outboundIf6', 'outbound-if6');
  const policy = one('policy');
  const timeoutText = one('policy-timeout');
  const timeout = timeoutText === undefined ? undefined : intIn(name('policy-timeout'), timeoutText, 1, 2 ** 31 - 1);
  // A timeout with no hook to time would be silently ignored: refused.
  if (timeout !== undefined && policy === undefined) throw new ConfigError(`${name('policy-timeout')}: needs ${name('policy')}`);
  const dflt = one('policy-default');
  if (dflt !== undefined && dflt !== 'allow' && dflt !== 'reject') throw new ConfigError(`${name('policy-default')} ${dflt}: not allow or reject`);
  if (dflt !== undefined && policy === undefined) throw new ConfigError(`${name('policy-default')}: needs ${name('policy')}`);
  if (policy !== undefined) {
    config.policy = { file: policy, ...(timeout !== undefined ? { timeoutMs: timeout } : {}), ...(dflt !== undefined ? { default: dflt } : {}) };
  }
  const logFile = one('log-file');
  if (logFile !== undefined) config.log.file = logFile;
  const logSize = one('log-size');
  if (logSize !== undefined) config.log.size = intIn(name('log-size'), logSize, LOG_SIZE_MIN, 2 ** 40);
  for (const long of ['interface', 'outbound-if4', 'outbound-if6', 'ns-ifname']) {
    const v = one(long);
    if (v !== undefined && (v.length > 15 || /[\s/]/.test(v))) throw new ConfigError(`${name(long)} ${v}: not an interface name`);
  }

  if (mode === 'passt') {
    if (rest.length) throw new ConfigError(`unexpected argument '${rest[0]}'`);
    const socket = one('socket');
    if (socket !== undefined) config.passt.socket = socket;
    const fd = one('fd');
    if (fd !== undefined) {
      config.passt.fd = intIn(name('fd'), fd, 0, 2 ** 31 - 1);
      config.passt.oneOff = true;
      if (socket !== undefined) throw new ConfigError(`${name('fd')} and ${name('socket')} are mutually exclusive`);
    }
  } else {
    config.pasta.target = pastaTarget(rest, one('netns'), one('userns'), name);
    const ifname = one('ns-ifname');
    if (ifname !== undefined) config.pasta.ifname = ifname;
    const nsMac = one('ns-mac-addr');
    if (nsMac !== undefined) config.pasta.nsMac = parseMac(name('ns-mac-addr'), nsMac);
  }

  // Recognised options this build cannot honour yet: refused, never ignored.
  for (const [long, g] of given) {
    if (g.def.status !== 'later') continue;
    const harmless = (long.endsWith('-ports') || long.endsWith('-ns')) && g.values.every((v) => v === 'none');
    if (!harmless) throw new ConfigError(`${name(long)}: not supported yet`);
  }
  // -T/-U: ports or auto; interface binds and exclusions alone are not
  // done, so asking for them is refused rather than ignored.
  for (const [long, f] of [['tcp-ns', forward.tcpNs], ['udp-ns', forward.udpNs]] as const) {
    const T = given.get(long);
    if (!T) continue;
    const bad = f.mode === 'spec' && f.specs.some((s) => s.iface !== undefined) ? 'interface binds' : f.mode === 'spec' && f.specs.some((s) => s.rules.length === 0) ? 'exclusions alone (all ports)' : undefined;
    if (bad) throw new ConfigError(`${name(long)} ${T.values.join(',')}: ${bad} not supported yet`);
  }
  return { action: 'run', config };
}

/** What -u forwards when only -t was given: its listed ports,
 * untranslated. Not `-t all` or exclusions alone: those take every port
 * the descriptor budget allows for TCP, and -u keeps its default. */
function udpFromTcp(t: PortForward): PortForward | undefined {
  if (t.mode !== 'spec') return undefined;
  const specs = t.specs.filter((s) => s.rules.length > 0);
  if (!specs.length) return undefined;
  return {
    mode: 'spec',
    specs: specs.map((s) => ({ ...s, rules: s.rules.map((r) => ({ ...r, toFirst: r.first })), implied: true as const })),
  };
}

function pastaTarget(rest: string[], netns: string | undefined, userns: string | undefined, name: (l: string) => string): PastaTarget {
  if (netns !== undefined) {
    if (rest.length) throw new ConfigError(`${name('netns')}: can't be given with a PID or command ('${rest[0]}')`);
    const path = netns.includes('/') ? netns : `/run/netns/${netns}`;
    return userns !== undefined ? { kind: 'netns', path, userns } : { kind: 'netns', path };
  }
  if (userns !== undefined && !(rest.length === 1 && /^\d+$/.test(rest[0]!))) {
    throw new ConfigError(`${name('userns')}: needs --netns or a PID`);
  }
  if (rest.length === 1 && /^\d+$/.test(rest[0]!)) {
    const pid = Number(rest[0]);
    if (pid < 1 || pid > 4194304) throw new ConfigError(`PID ${rest[0]} out of range`);
    return { kind: 'pid', pid };
  }
  return { kind: 'command', argv: rest };
}

function logFormat(opt: string, v: string | undefined): 'text' | 'json' {
  if (v === undefined || v === 'text' || v === 'json') return v ?? 'text';
  throw new ConfigError(`${opt} ${v}: not 'text' or 'json'`);
}

function intIn(opt: string, v: string, min: number, max: number): number {
  if (!/^\d+$/.test(v)) throw new ConfigError(`${opt} ${v}: not a number`);
  const n = Number(v);
  if (n < min || n > max) throw new ConfigError(`${opt} ${v}: out of range (${min}-${max})`);
  return n;
}

/** Dot-decimal (contiguous) or a prefix length; IPv4 only. */
export function parseNetmask(opt: string, v: string): number {
  if (/^\d+$/.test(v)) return intIn(opt, v, 0, 32);
  if (!isIPv4(v)) {
    throw new ConfigError(isIP(v) ? `${opt} ${v}: wrong family (IPv4 netmask expected)` : `${opt} ${v}: not a netmask`);
  }
  const bits = v.split('.').reduce((acc, o) => (acc << 8) | Number(o), 0) >>> 0;
  const len = 32 - Math.log2((~bits >>> 0) + 1);
  if (!Number.isInteger(len)) throw new ConfigError(`${opt} ${v}: netmask is not contiguous`);
  return len;
}

export function parseMac(opt: string, v: string): string {
  if (!/^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/.test(v)) throw new ConfigError(`${opt} ${v}: not a MAC address`);
  return v.toLowerCase();
}
