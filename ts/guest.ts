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
  /** -D (undefined: from resolv.conf; []: none). */
  dns?: string[];
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
  // A resolver on the host's loopback is unreachable as such from the
  // guest: it is offered the gateway instead (forwarded with DNS support).
  const pick = (family: (a: string) => boolean, gw: string) => {
    const mine = dnsAll.filter(family);
    const direct = mine.filter((a) => !isLoopback(a));
    return direct.length ? direct : mine.length ? [gw] : [];
  };

  const guest: BindingConfig['guest'] = {
    ourMac: o.mac ?? h4?.mac ?? h6?.mac ?? FALLBACK_MAC,
    search: o.search ?? resolv.search,
    disabled: o.disabled ?? {},
  };
  const mtu = o.mtu;
  if (mtu !== undefined) guest.mtu = mtu;
  const gatewayMap: GuestPlan['gatewayMap'] = {};

  const addr4 = o.address4 ?? h4?.addrs[0]?.addr;
  const gw4 = o.gateway4 ?? h4?.gateway ?? undefined;
  if (addr4 && gw4 && o.ipv4 !== false) {
    guest.v4 = {
      addr: addr4,
      prefixLen: o.prefixLen4 ?? h4?.addrs.find((a) => a.addr === addr4)?.prefixLen ?? classful(addr4),
      gateway: gw4,
      dns: pick(isIPv4, gw4),
    };
    if (!o.noMapGw) gatewayMap.v4 = o.mapHostLoopback4 ?? gw4;
  }
  const addr6 = o.address6 ?? h6?.addrs[0]?.addr;
  const gw6 = o.gateway6 ?? h6?.gateway ?? undefined;
  if (addr6 && gw6 && o.ipv6 !== false) {
    guest.v6 = {
      addr: addr6,
      prefixLen: h6?.addrs.find((a) => a.addr === addr6)?.prefixLen ?? 64,
      gateway: gw6,
      routerLl: gw6.toLowerCase().startsWith('fe80:') ? gw6 : ROUTER_LL,
      dns: pick(isIPv6, gw6),
    };
    if (!o.noMapGw) gatewayMap.v6 = o.mapHostLoopback6 ?? gw6;
  }
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
