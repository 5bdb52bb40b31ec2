// Deriving the guest configuration from the host's, as passt does.
import test from 'ava';
import { parseResolvConf, planGuest } from '../../ts/guest.js';
import type { HostInfo } from '../../ts/native.js';

const host: HostInfo = {
  v4: { ifname: 'eth0', ifindex: 2, mtu: 1500, mac: '02:00:00:00:00:01', addrs: [{ addr: '192.0.2.2', prefixLen: 24 }], linkLocal: [], gateway: '192.0.2.1' },
  v6: { ifname: 'eth0', ifindex: 2, mtu: 1500, mac: '02:00:00:00:00:01', addrs: [{ addr: 'fd00::2', prefixLen: 64 }], linkLocal: ['fe80::1:2'], gateway: 'fe80::ff' },
};

test('copies the host, offers the gateway for a loopback resolver', (t) => {
  const p = planGuest(host, parseResolvConf('nameserver 127.0.0.53\nsearch example.org lan\n'));
  t.deepEqual(p.guest.v4, { addr: '192.0.2.2', prefixLen: 24, gateway: '192.0.2.1', dns: ['192.0.2.1'] });
  t.deepEqual(p.guest.v6, { addr: 'fd00::2', prefixLen: 64, gateway: 'fe80::ff', routerLl: 'fe80::ff', dns: [] });
  t.is(p.guest.ourMac, '02:00:00:00:00:01');
  t.deepEqual(p.guest.search, ['example.org', 'lan']);
  // Queries to the gateway's port 53 go to the loopback resolver.
  t.deepEqual(p.gatewayMap, { v4: '192.0.2.1', v6: 'fe80::ff', dns4: { match: '192.0.2.1', host: '127.0.0.53' } });
});

test('--dns-forward: the guest is given that address, which leads to the first resolver or --dns-host', (t) => {
  const r = parseResolvConf('nameserver 127.0.0.53\nnameserver ::1\n');
  const p = planGuest(host, r, { dnsForward4: '192.0.2.53', dnsForward6: 'fd00::53', dnsHost6: '::1' });
  t.deepEqual(p.guest.v4?.dns, ['192.0.2.53']);
  t.deepEqual(p.guest.v6?.dns, ['fd00::53']);
  t.deepEqual(p.gatewayMap.dns4, { match: '192.0.2.53', host: '127.0.0.53' });
  t.deepEqual(p.gatewayMap.dns6, { match: 'fd00::53', host: '::1' });
  // Not told (pasta without --dhcp-dns), still forwarded.
  const quiet = planGuest(host, r, { noDhcpDns: true });
  t.deepEqual(quiet.guest.v4?.dns, []);
  t.deepEqual(quiet.gatewayMap.dns4, { match: '192.0.2.1', host: '127.0.0.53' });
  // A resolver the guest can reach directly needs no mapping.
  const direct = planGuest(host, parseResolvConf('nameserver 198.51.100.53\n'));
  t.deepEqual(direct.guest.v4?.dns, ['198.51.100.53']);
  t.is(direct.gatewayMap.dns4, undefined);
});

test('--map-guest-addr leads to the guest\'s own address, per family, as given or assigned', (t) => {
  const p = planGuest(host, parseResolvConf(''), { mapGuestAddr4: '169.254.1.2', mapGuestAddr6: 'fd00::a' });
  t.deepEqual(p.gatewayMap.guest4, { match: '169.254.1.2', host: '192.0.2.2' });
  t.deepEqual(p.gatewayMap.guest6, { match: 'fd00::a', host: 'fd00::2' });
  const a = planGuest(host, parseResolvConf(''), { mapGuestAddr4: '169.254.1.2', address4: '10.0.0.5' });
  t.deepEqual(a.gatewayMap.guest4, { match: '169.254.1.2', host: '10.0.0.5' });
  t.is(a.gatewayMap.guest6, undefined);
});

test('overrides win; --no-map-gw and -4 drop what they should', (t) => {
  const p = planGuest(host, parseResolvConf('nameserver 198.51.100.53\nnameserver 2001:db8::53\n'), {
    address4: '10.0.0.5',
    gateway4: '10.0.0.1',
    dns: ['198.51.100.1'],
    noMapGw: true,
    ipv6: false,
  });
  t.deepEqual(p.guest.v4, { addr: '10.0.0.5', prefixLen: 8, gateway: '10.0.0.1', dns: ['198.51.100.1'] });
  t.is(p.guest.v6, undefined);
  t.deepEqual(p.gatewayMap, {});
});

test('a global IPv6 gateway gets a link-local router address', (t) => {
  const p = planGuest({ ...host, v6: { ...host.v6!, gateway: 'fd00::1' } }, { nameservers: ['2001:db8::53'], search: [] });
  t.is(p.guest.v6?.routerLl, 'fe80::1');
  t.deepEqual(p.guest.v6?.dns, ['2001:db8::53']);
});

test('resolv.conf parsing', (t) => {
  t.deepEqual(parseResolvConf('# c\nnameserver 1.1.1.1\nnameserver fe80::1%eth0\ndomain x.y\noptions ndots:2\n'), {
    nameservers: ['1.1.1.1', 'fe80::1'],
    search: ['x.y'],
  });
});
