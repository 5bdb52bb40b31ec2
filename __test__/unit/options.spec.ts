// Command-line parsing into Config, and the one-line errors.
import test from 'ava';
import { parseArgs, parseNetmask } from '../../ts/config/normalize.js';
import { OPTIONS } from '../../ts/config/options.js';
import { hostForwards } from '../../ts/config/forwards.js';
import type { Config } from '../../ts/config/types.js';

function config(mode: 'passt' | 'pasta', argv: string[]): Config {
  const p = parseArgs(mode, argv);
  if (p.action !== 'run') throw new Error(`not a run: ${p.action}`);
  return p.config;
}
const fails = (mode: 'passt' | 'pasta', argv: string[], message: string) => (t: import('ava').ExecutionContext) =>
  t.throws(() => parseArgs(mode, argv), { message });

test('defaults follow the man page', (t) => {
  const c = config('passt', []);
  t.deepEqual(c.forward.tcp, { mode: 'none' });
  t.true(c.guest.ipv4 && c.guest.ipv6 && c.guest.dhcpDns && c.guest.dhcpSearch);
  t.false(c.foreground);
  const p = config('pasta', []);
  t.deepEqual(p.forward.tcp, { mode: 'auto' });
  t.false(p.guest.dhcpDns, 'pasta passes DNS only with --dhcp-dns');
  t.deepEqual(p.pasta.target, { kind: 'command', argv: [] });
});

test('addresses are filed by family, once each', (t) => {
  const c = config('passt', ['-a', '192.0.2.9', '--address', 'fd00::9', '-g', '192.0.2.254', '-n', '255.255.0.0']);
  t.is(c.guest.address4, '192.0.2.9');
  t.is(c.guest.address6, 'fd00::9');
  t.is(c.guest.gateway4, '192.0.2.254');
  t.is(c.guest.prefixLen4, 16);
  t.throws(() => parseArgs('passt', ['-a', '192.0.2.9', '-a', '192.0.2.10']), {
    message: '-a 192.0.2.10: an IPv4 address was already given',
  });
  t.throws(() => parseArgs('passt', ['-g', 'gateway']), { message: '-g gateway: not an IPv4 or IPv6 address' });
});

test('netmask: dot-decimal or bits, IPv4 only, contiguous', (t) => {
  t.is(parseNetmask('-n', '24'), 24);
  t.is(parseNetmask('-n', '255.255.255.128'), 25);
  t.is(parseNetmask('-n', '0.0.0.0'), 0);
  t.throws(() => parseNetmask('-n', 'ffff::'), { message: '-n ffff::: wrong family (IPv4 netmask expected)' });
  t.throws(() => parseNetmask('-n', '255.0.255.0'), { message: '-n 255.0.255.0: netmask is not contiguous' });
  t.throws(() => parseNetmask('-n', '33'), { message: '-n 33: out of range (0-32)' });
});

test('DNS, search list, MTU, MAC', (t) => {
  const c = config('passt', ['-D', '192.0.2.53', '-D', 'fd00::53', '-S', 'a.example b.example', '-m', '9000', '-M', '02:00:00:AA:BB:CC']);
  t.deepEqual(c.guest.dns, ['192.0.2.53', 'fd00::53']);
  t.deepEqual(c.guest.search, ['a.example', 'b.example']);
  t.is(c.guest.mtu, 9000);
  t.is(c.guest.mac, '02:00:00:aa:bb:cc');
  t.deepEqual(config('passt', ['-D', 'none', '-S', 'none']).guest.dns, []);
  t.deepEqual(config('passt', ['-S', 'none']).guest.search, []);
});

test('toggles and short-option groups', (t) => {
  const c = config('passt', ['-fdq1', '--no-dhcp', '--no-ndp', '--no-dhcpv6', '--no-ra', '--no-icmp', '--no-tcp', '--no-udp', '--no-map-gw', '-4']);
  t.true(c.foreground && c.log.debug && c.log.quiet && c.passt.oneOff);
  t.deepEqual(c.guest.disabled, { tcp: true, udp: true, icmp: true, dhcp: true, ndp: true, dhcpv6: true, ra: true });
  t.true(c.guest.noMapGw);
  t.false(c.guest.ipv6);
});

test('passt socket options', (t) => {
  t.is(config('passt', ['-s', '/tmp/x.sock']).passt.socket, '/tmp/x.sock');
  const fd = config('passt', ['-F', '5']);
  t.is(fd.passt.fd, 5);
  t.true(fd.passt.oneOff, '--fd implies --one-off');
  t.is(config('passt', ['--pcap', '/tmp/c.pcap', '-P', '/tmp/p']).pidFile, '/tmp/p');
});

test('pasta targets: command, PID, --netns', (t) => {
  t.deepEqual(config('pasta', ['--config-net', '--', 'ip', '-br', 'a']).pasta.target, { kind: 'command', argv: ['ip', '-br', 'a'] });
  t.deepEqual(config('pasta', ['sh', '-c', 'exit 3']).pasta.target, { kind: 'command', argv: ['sh', '-c', 'exit 3'] });
  t.deepEqual(config('pasta', ['1234']).pasta.target, { kind: 'pid', pid: 1234 });
  t.deepEqual(config('pasta', ['--netns', 'blue']).pasta.target, { kind: 'netns', path: '/run/netns/blue' });
  t.deepEqual(config('pasta', ['--netns', '/proc/1/ns/net', '--userns', '/proc/1/ns/user']).pasta.target, {
    kind: 'netns',
    path: '/proc/1/ns/net',
    userns: '/proc/1/ns/user',
  });
  const c = config('pasta', ['-I', 'tap7', '--ns-mac-addr', '02:00:00:00:00:07', '--config-net']);
  t.is(c.pasta.ifname, 'tap7');
  t.is(c.pasta.nsMac, '02:00:00:00:00:07');
  t.true(c.pasta.configNet);
});

test('unknown option', fails('passt', ['--frobnicate'], "unrecognized option '--frobnicate'"));
test('unknown short option', fails('passt', ['-z'], "unrecognized option '-z'"));
test('missing value', fails('passt', ['-s'], "option '-s' requires an argument"));
test('missing value, long form', fails('pasta', ['--netns'], "option '--netns' requires an argument"));
test('mode-only options', fails('pasta', ['-s', '/tmp/x'], '-s: passt-only option'));
test('mode-only options, the other way', fails('passt', ['--config-net'], '--config-net: pasta-only option'));
test('unsupported options', fails('passt', ['--vhost-user'], '--vhost-user: not supported'));
test('recognised but not yet implemented', fails('pasta', ['--runas', 'nobody'], '--runas: not supported yet'));
test('--no-copy-routes and --no-copy-addrs ask for what --config-net does', (t) => t.is(config('pasta', ['--config-net', '--no-copy-routes', '--no-copy-addrs']).pasta.configNet, true));
test('-u auto, -T auto and -U auto are accepted by pasta', (t) => {
  const f = config('pasta', ['-u', 'auto', '-T', 'auto', '-U', 'auto']).forward;
  t.deepEqual([f.udp.mode, f.tcpNs.mode, f.udpNs.mode], ['auto', 'auto', 'auto']);
});
test('-u with ports is accepted', (t) => t.is(config('passt', ['-u', '53,5353:53']).forward.udp.mode, 'spec'));
test('without -u, the ports -t lists are forwarded for UDP too, untranslated and where they can be bound', (t) => {
  const u = config('passt', ['-t', '8080:80', '-t', '127.0.0.1/22,~23']).forward.udp;
  t.deepEqual(u, {
    mode: 'spec',
    specs: [
      { rules: [{ first: 8080, last: 8080, toFirst: 8080 }], excluded: [], implied: true },
      { addr: '127.0.0.1', rules: [{ first: 22, last: 22, toFirst: 22 }], excluded: [{ first: 23, last: 23 }], implied: true },
    ],
  });
  t.deepEqual(hostForwards(u), [
    { port: 8080, guestPort: 8080, bestEffort: true },
    { addr: '127.0.0.1', port: 22, guestPort: 22, bestEffort: true },
  ]);
  t.is(config('passt', ['-t', 'all']).forward.udp.mode, 'none', '-t all leaves -u alone');
  t.is(config('passt', ['-t', '~22']).forward.udp.mode, 'none', 'so do exclusions alone');
  t.deepEqual(config('pasta', ['-t', '8080', '-u', 'none']).forward.udp, { mode: 'none' }, '-u overrides');
  t.is(config('pasta', ['-t', 'auto']).forward.udp.mode, 'auto', 'pasta -t auto: -u keeps its default');
  t.is(config('passt', ['-t', 'none']).forward.udp.mode, 'none');
});
test('-t all is accepted by passt', (t) => t.is(config('passt', ['-t', 'all']).forward.tcp.mode, 'all'));
test('-t all is refused by pasta', fails('pasta', ['-t', 'all'], '-t all: not valid in this mode'));
test('-t with an interface bind', (t) => {
  const f = config('passt', ['-t', '%lo/22']).forward.tcp;
  t.is(f.mode === 'spec' ? f.specs[0]!.iface : undefined, 'lo');
});
test('--map-host-loopback: one address per family, the last wins', (t) => {
  const g = config('pasta', ['--map-host-loopback', '10.0.0.9', '--map-host-loopback', 'fd00::9', '--map-host-loopback', '10.0.0.8']).guest;
  t.is(g.mapHostLoopback4, '10.0.0.8');
  t.is(g.mapHostLoopback6, 'fd00::9');
  t.true(config('passt', ['--map-host-loopback', 'none']).guest.noMapGw);
});
test('--map-host-loopback needs an address', fails('passt', ['--map-host-loopback', 'gw'], '--map-host-loopback gw: not an IPv4 or IPv6 address'));
test('-T with ports is accepted by pasta', (t) => {
  const f = config('pasta', ['-T', '5432', '-T', '127.0.0.1/8000:9000']).forward.tcpNs;
  t.is(f.mode, 'spec');
});
test('-T with exclusions alone is not implemented yet', fails('pasta', ['-T', '~22'], '-T ~22: exclusions alone (all ports) not supported yet'));
test('-T is pasta-only', fails('passt', ['-T', '22'], '-T: pasta-only option'));
test('--dns-forward and --dns-host: one address per family', (t) => {
  const g = config('passt', ['--dns-forward', '10.0.2.3', '--dns-forward', 'fd00::3', '--dns-host', '127.0.0.53']).guest;
  t.is(g.dnsForward4, '10.0.2.3');
  t.is(g.dnsForward6, 'fd00::3');
  t.is(g.dnsHost4, '127.0.0.53');
});
test('-o: one source address per family', (t) => {
  const g = config('pasta', ['-o', '198.51.100.3', '--outbound', '2001:db8:1::3']).guest;
  t.is(g.outbound4, '198.51.100.3');
  t.is(g.outbound6, '2001:db8:1::3');
});

test('-o twice for one family', fails('passt', ['-o', '198.51.100.3', '-o', '198.51.100.4'], '-o 198.51.100.4: an IPv4 address was already given'));

test('-o takes an address', fails('passt', ['-o', 'eth0'], '-o eth0: not an IPv4 or IPv6 address'));

test('--dns-forward twice for one family', fails('passt', ['--dns-forward', '10.0.2.3', '--dns-forward', '10.0.2.4'], '--dns-forward 10.0.2.4: an IPv4 address was already given'));
test('-t with ports is accepted', (t) => t.is(config('passt', ['-t', '8080:80']).forward.tcp.mode, 'spec'));
test('port spec errors come first', fails('pasta', ['-t', '1000-1010:2000-2011'], '-t 1000-1010:2000-2011: range lengths differ (11 vs 12)'));
test('a single-valued option twice', fails('passt', ['-s', 'a', '-s', 'b'], '-s: given more than once'));
test('-4 with -6', fails('passt', ['-4', '-6'], '-4 and -6 are mutually exclusive'));
test('--netns with a command', fails('pasta', ['--netns', 'x', 'sh'], "--netns: can't be given with a PID or command ('sh')"));
test('MTU range', fails('passt', ['-m', '65521'], '-m 65521: out of range (68-65520)'));
test('MAC syntax', fails('passt', ['-M', '00:11:22'], '-M 00:11:22: not a MAC address'));
test('IPv6 address with -4', fails('passt', ['-4', '-a', 'fd00::1'], '-4: IPv6 address fd00::1 given'));
test('passt takes no arguments', fails('passt', ['extra'], "unexpected argument 'extra'"));

test('-t none is accepted; help and version win', (t) => {
  t.deepEqual(config('passt', ['-t', 'none', '-u', 'none']).forward.udp, { mode: 'none' });
  t.deepEqual(parseArgs('passt', ['-a', 'bogus', '--help']), { action: 'help' }, 'help wins over bad values');
  t.deepEqual(parseArgs('pasta', ['--version']), { action: 'version' });
});

test('every option of the table parses in its modes', (t) => {
  for (const o of OPTIONS) {
    for (const mode of o.modes) {
      const argv = [`--${o.long}`, ...(o.value ? [o.long.includes('port') || o.long.endsWith('-ns') ? 'none' : 'x'] : [])];
      try {
        parseArgs(mode, argv);
      } catch (e) {
        t.notRegex((e as Error).message, /unrecognized|pasta-only|passt-only/, `${mode} --${o.long}`);
      }
    }
  }
  t.pass();
});

test('--policy, --policy-timeout, --log-flows, --log-format: both modes', (t) => {
  for (const mode of ['passt', 'pasta'] as const) {
    const c = config(mode, ['--policy', 'examples/noop.mjs', '--policy-timeout', '250', '--log-flows', '--log-format', 'json']);
    t.deepEqual(c.policy, { file: 'examples/noop.mjs', timeoutMs: 250 });
    t.true(c.log.flows);
    t.is(c.log.format, 'json');
  }
  const d = config('pasta', []);
  t.is(d.policy, undefined);
  t.false(d.log.flows);
  t.is(d.log.format, 'text');
  t.deepEqual(config('passt', ['--policy', 'p.ts']).policy, { file: 'p.ts' });
});
test('--policy-timeout must be a number', fails('pasta', ['--policy', 'p.mjs', '--policy-timeout', 'abc'], '--policy-timeout abc: not a number'));
test('--policy-timeout must be positive', fails('passt', ['--policy', 'p.mjs', '--policy-timeout', '0'], '--policy-timeout 0: out of range (1-2147483647)'));
test('--policy-timeout needs --policy', fails('pasta', ['--policy-timeout', '50'], '--policy-timeout: needs --policy'));
test('--log-format is text or json', fails('passt', ['--log-format', 'xml'], "--log-format xml: not 'text' or 'json'"));
test('--policy needs a file', fails('pasta', ['--policy'], "option '--policy' requires an argument"));
test('--log-size: bytes, at least 4096', (t) => t.is(config('pasta', ['-l', '/tmp/x', '--log-size', '65536']).log.size, 65536));
test('--log-size below its floor', fails('passt', ['--log-size', '100'], '--log-size 100: out of range (4096-1099511627776)'));
test('--map-guest-addr: one address per family', (t) => {
  const g = config('pasta', ['--map-guest-addr', '169.254.1.2', '--map-guest-addr', 'fd00::a']).guest;
  t.is(g.mapGuestAddr4, '169.254.1.2');
  t.is(g.mapGuestAddr6, 'fd00::a');
});
test('--map-guest-addr twice for one family', fails('pasta', ['--map-guest-addr', '169.254.1.2', '--map-guest-addr', '169.254.1.3'], '--map-guest-addr 169.254.1.3: an IPv4 address was already given'));
test('-H: a host name for DHCP', (t) => t.is(config('passt', ['-H', 'guest1.example']).guest.hostname, 'guest1.example'));
test('-H refuses what is not a host name', fails('passt', ['-H', 'bad name'], '-H bad name: not a host name'));
test('--host-lo-to-ns-lo asks for what pasta does by default', (t) => t.false(config('pasta', ['--host-lo-to-ns-lo']).pasta.noSplice));
test('--host-lo-to-ns-lo with --no-splice', fails('pasta', ['--host-lo-to-ns-lo', '--no-splice'], '--host-lo-to-ns-lo: needs the splice path that --no-splice turns off'));
