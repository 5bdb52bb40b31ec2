// What the guest is told, derived as passt does: the host's own address,
// prefix, gateway, MTU and MAC from the interface holding the default
// route, DNS from /etc/resolv.conf; every piece overridable. Pure apart
// from the two readers at the bottom.
import { readFileSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';
import type { BindingConfig, HostFamily, HostInfo } from './native.js';

export interface GuestOverrides {
  /** -a: up to one IPv4 and one IPv6 address. */
  address4?: string;
  address6?: string;
  /** -n: IPv4 prefix length. */
  prefixLen4?: number;
  /** -g */
  gateway4?: string;
  gateway6?: string;
  /** -M: our MAC towards the guest. */
  mac?: string;
  /** -m */
  mtu?: number;
  /** -H: the host name the guest is given by DHCP (option 12). */
  hostname?: string;
  /** -D (undefined: from resolv.conf; []: none). */
  dns?: string[];
  /** --no-dhcp-dns (pasta: no --dhcp-dns): the guest is told no
   * resolver, but DNS forwarding still follows `dns`. */
  noDhcpDns?: boolean;
  /** -S (undefined: from resolv.conf; []: none). */
  search?: string[];
  ipv4?: boolean;
  ipv6?: boolean;
  /** --no-map-gw */
  noMapGw?: boolean;
  /** --map-host-loopback: the address of each family that stands for the
   * host's loopback, instead of the gateway's. */
  mapHostLoopback4?: string;
  mapHostLoopback6?: string;
  /** --dns-forward: the address (per family) the guest is given as its
   * resolver, whose DNS traffic (port 53, UDP and TCP) goes to the
   * host's resolver. */
  dnsForward4?: string;
  dnsForward6?: string;
  /** --dns-host: that resolver (default: the first of its family). */
  dnsHost4?: string;
  dnsHost6?: string;
  /** -o: the source address of outbound sockets of each family (not
   * towards the host's loopback); default: as the routes choose. */
  outbound4?: string;
  outbound6?: string;
  /** --map-guest-addr: the address (per family) the guest reaches the
   * host's copy of its own address through; the host's clients from that
   * address appear from it, not from the gateway. */
  mapGuestAddr4?: string;
  mapGuestAddr6?: string;
  disabled?: BindingConfig['guest']['disabled'];
}

export interface Resolv {
  nameservers: string[];
  search: string[];
}

/** A locally administered MAC for when the host interface has none. */
const FALLBACK_MAC = '9a:55:9a:55:9a:55';
/** Our link-local router address when the host's gateway is not link-local. */
const ROUTER_LL = 'fe80::1';

export function parseResolvConf(text: string): Resolv {
  const r: Resolv = { nameservers: [], search: [] };
  for (const line of text.split('\n')) {
    const [key, ...rest] = line.trim().split(/\s+/);
    if (key === 'nameserver' && rest[0]) r.nameservers.push(rest[0].split('%')[0]!);
    if (key === 'search' || key === 'domain') r.search = rest;
  }
  return r;
}

function isLoopback(a: string): boolean {
  return a === '::1' || a.startsWith('127.');
}

export interface GuestPlan {
  guest: BindingConfig['guest'];
  gatewayMap: NonNullable<BindingConfig['gatewayMap']>;
  /** Which host interface the defaults came from, per family. */
  ifname4?: string;
  ifname6?: string;
}

/** Derives the guest configuration from the host's and the overrides. */
export function planGuest(host: HostInfo, resolv: Resolv, o: GuestOverrides = {}): GuestPlan {
  const h4: HostFamily | null = o.ipv4 === false ? null : host.v4;
  const h6: HostFamily | null = o.ipv6 === false ? null : host.v6;
  const dnsAll = o.dns ?? resolv.nameservers;
  // What the guest is told, and the DNS mapping. With --dns-forward, the
  // guest queries that address and reaches the host's resolver there. A
  // resolver on the host's loopback (127.0.0.53, ::1) is unreachable as
  // such from the guest: unless others can be given, the guest is
  // offered the gateway, and queries to it go to that resolver.
  const pick = (family: (a: string) => boolean, gw: string, forward?: string, host?: string) => {
    const mine = dnsAll.filter(family);
    const direct = mine.filter((a) => !isLoopback(a));
    const to = host ?? mine[0];
    const told = (dns: string[]) => (o.noDhcpDns ? [] : dns);
    if (forward !== undefined) return { dns: told([forward, ...direct.filter((a) => a !== forward)]), map: to ? { match: forward, host: to } : undefined };
    if (direct.length) return { dns: told(direct), map: undefined };
    return mine.length ? { dns: told([gw]), map: { match: gw, host: to! } } : { dns: [], map: undefined };
  };

  const guest: BindingConfig['guest'] = {
    ourMac: o.mac ?? h4?.mac ?? h6?.mac ?? FALLBACK_MAC,
    search: o.search ?? resolv.search,
    disabled: o.disabled ?? {},
  };
  const mtu = o.mtu;
  if (mtu !== undefined) guest.mtu = mtu;
  if (o.hostname !== undefined) guest.hostname = o.hostname;
  const gatewayMap: GuestPlan['gatewayMap'] = {};

  const addr4 = o.address4 ?? h4?.addrs[0]?.addr;
  const gw4 = o.gateway4 ?? h4?.gateway ?? undefined;
  if (addr4 && gw4 && o.ipv4 !== false) {
    const d = pick(isIPv4, gw4, o.dnsForward4, o.dnsHost4);
    guest.v4 = {
      addr: addr4,
      prefixLen: o.prefixLen4 ?? h4?.addrs.find((a) => a.addr === addr4)?.prefixLen ?? classful(addr4),
      gateway: gw4,
      dns: d.dns,
    };
    if (!o.noMapGw) gatewayMap.v4 = o.mapHostLoopback4 ?? gw4;
    if (d.map) gatewayMap.dns4 = d.map;
    if (o.mapGuestAddr4) gatewayMap.guest4 = { match: o.mapGuestAddr4, host: addr4 };
  }
  const addr6 = o.address6 ?? h6?.addrs[0]?.addr;
  const gw6 = o.gateway6 ?? h6?.gateway ?? undefined;
  if (addr6 && gw6 && o.ipv6 !== false) {
    const d6 = pick(isIPv6, gw6, o.dnsForward6, o.dnsHost6);
    guest.v6 = {
      addr: addr6,
      prefixLen: h6?.addrs.find((a) => a.addr === addr6)?.prefixLen ?? 64,
      gateway: gw6,
      routerLl: gw6.toLowerCase().startsWith('fe80:') ? gw6 : ROUTER_LL,
      dns: d6.dns,
    };
    if (!o.noMapGw) gatewayMap.v6 = o.mapHostLoopback6 ?? gw6;
    if (d6.map) gatewayMap.dns6 = d6.map;
    if (o.mapGuestAddr6) gatewayMap.guest6 = { match: o.mapGuestAddr6, host: addr6 };
  }
  if (o.outbound4 !== undefined) gatewayMap.out4 = o.outbound4;
  if (o.outbound6 !== undefined) gatewayMap.out6 = o.outbound6;
  const plan: GuestPlan = { guest, gatewayMap };
  if (h4) plan.ifname4 = h4.ifname;
  if (h6) plan.ifname6 = h6.ifname;
  return plan;
}

/** RFC 4632's classful default, for an address the host does not have. */
function classful(a: string): number {
  const first = Number(a.split('.')[0]);
  return first < 128 ? 8 : first < 192 ? 16 : 24;
}

export function readResolvConf(path = '/etc/resolv.conf'): Resolv {
  try {
    return parseResolvConf(readFileSync(path, 'utf8'));
  } catch {
    return { nameservers: [], search: [] };
  }
}
