// Every option of passt(1) and pasta(1), with its short form, whether it
// takes a value, which modes accept it, and whether this build does what
// it says: 'ok' (works), 'later' (recognised, refused until the engine
// does it: never silently ignored) or 'unsupported' (not planned).
export type Mode = 'passt' | 'pasta';
export type Status = 'ok' | 'later' | 'unsupported';

export interface OptionDef {
  long: string;
  short?: string;
  /** Name of the value, if the option takes one. */
  value?: string;
  modes: Mode[];
  status: Status;
  /** Man-page section, for --help. */
  group: 'common' | 'passt' | 'pasta';
  help: string;
}

const both: Mode[] = ['passt', 'pasta'];
const def = (
  long: string,
  short: string | undefined,
  value: string | undefined,
  modes: Mode[],
  status: Status,
  help: string,
): OptionDef => {
  const d: OptionDef = {
    long,
    modes,
    status,
    group: modes.length === 2 ? 'common' : modes[0]!,
    help,
  };
  if (short) d.short = short;
  if (value) d.value = value;
  return d;
};

export const OPTIONS: OptionDef[] = [
  def('debug', 'd', undefined, both, 'ok', 'Be verbose, print counters on exit'),
  def('trace', undefined, undefined, both, 'ok', 'Be extra verbose, show single packets'),
  def('quiet', 'q', undefined, both, 'ok', "Don't print informational messages"),
  def('foreground', 'f', undefined, both, 'ok', "Don't run in background"),
  def('stderr', 'e', undefined, both, 'ok', 'Log to standard error too'),
  def('log-file', 'l', 'PATH', both, 'ok', 'Log to file PATH'),
  def('log-size', undefined, 'SIZE', both, 'ok', 'Limit log file size to SIZE bytes'),
  def('runas', undefined, 'UID|UID:GID|LOGIN|LOGIN:GROUP', both, 'later', 'Change to given UID and GID'),
  def('help', 'h', undefined, both, 'ok', 'Display this help message and exit'),
  def('version', undefined, undefined, both, 'ok', 'Show version and exit'),
  def('pcap', 'p', 'FILE', both, 'ok', 'Capture guest-facing packets to FILE in pcap format'),
  def('pid', 'P', 'FILE', both, 'ok', 'Write own PID to FILE once initialised'),
  def('mtu', 'm', 'MTU', both, 'ok', 'Assign MTU via DHCP (option 26) and NDP (option 5)'),
  def('address', 'a', 'ADDR', both, 'ok', 'Assign IPv4 or IPv6 ADDR (once per family)'),
  def('netmask', 'n', 'MASK', both, 'ok', 'Assign IPv4 netmask MASK, dot-decimal or bits'),
  def('mac-addr', 'M', 'ADDR', both, 'ok', 'Use source MAC address ADDR towards the guest'),
  def('gateway', 'g', 'ADDR', both, 'ok', 'Assign IPv4 or IPv6 ADDR as default gateway'),
  def('interface', 'i', 'NAME', both, 'ok', 'Use host interface NAME to derive addresses and routes'),
  def('outbound', 'o', 'ADDR', both, 'ok', 'Bind outbound sockets to IPv4 or IPv6 ADDR'),
  def('outbound-if4', undefined, 'NAME', both, 'ok', 'Derive IPv4 addresses and routes from interface NAME'),
  def('outbound-if6', undefined, 'NAME', both, 'ok', 'Derive IPv6 addresses and routes from interface NAME'),
  def('dns', 'D', 'ADDR', both, 'ok', "Use ADDR as DNS resolver ('none': no DNS)"),
  def('dns-forward', undefined, 'ADDR', both, 'ok', 'Forward DNS queries sent to ADDR to the first resolver'),
  def('dns-host', undefined, 'ADDR', both, 'ok', 'Host address to forward DNS queries to'),
  def('search', 'S', 'LIST', both, 'ok', "Space-separated DNS search LIST ('none': no list)"),
  def('no-dhcp-dns', undefined, undefined, ['passt'], 'ok', "Don't send DNS resolvers via DHCP, NDP, DHCPv6"),
  def('dhcp-dns', undefined, undefined, ['pasta'], 'ok', 'Send DNS resolvers via DHCP, NDP, DHCPv6'),
  def('no-dhcp-search', undefined, undefined, ['passt'], 'ok', "Don't send the search list via DHCP, NDP, DHCPv6"),
  def('dhcp-search', undefined, undefined, ['pasta'], 'ok', 'Send the search list via DHCP, NDP, DHCPv6'),
  def('no-tcp', undefined, undefined, both, 'ok', 'Disable the TCP protocol handler'),
  def('no-udp', undefined, undefined, both, 'ok', 'Disable the UDP protocol handler'),
  def('no-icmp', undefined, undefined, both, 'ok', 'Disable the ICMP/ICMPv6 echo handler'),
  def('no-dhcp', undefined, undefined, both, 'ok', 'Disable the DHCP server'),
  def('no-ndp', undefined, undefined, both, 'ok', 'Disable NDP responses'),
  def('no-dhcpv6', undefined, undefined, both, 'ok', 'Disable the DHCPv6 server'),
  def('no-ra', undefined, undefined, both, 'ok', 'Disable router advertisements'),
  def('no-map-gw', undefined, undefined, both, 'ok', "Don't map the gateway address to the host"),
  def('map-host-loopback', undefined, 'ADDR', both, 'ok', "Translate ADDR to the host's loopback"),
  def('map-guest-addr', undefined, 'ADDR', both, 'ok', "Translate ADDR to the guest's address"),
  def('ipv4-only', '4', undefined, both, 'ok', 'Enable IPv4 operation only'),
  def('ipv6-only', '6', undefined, both, 'ok', 'Enable IPv6 operation only'),
  def('stats', undefined, undefined, both, 'ok', 'Print frame and drop counters on exit'),
  def('log-flows', undefined, undefined, both, 'ok', 'Log one line per finished flow'),
  def('log-format', undefined, 'text|json', both, 'ok', 'Log as text (default) or one JSON object per line'),
  def('policy', undefined, 'FILE', both, 'ok', 'Per-flow policy hooks from FILE (.js, .mjs, .ts, .mts)'),
  def('policy-timeout', undefined, 'MS', both, 'ok', 'Decide by --policy-default a flow whose policy decision takes longer (default 100)'),
  def('policy-default', undefined, 'allow|reject', both, 'ok', 'What a flow gets when its policy hook fails or is late (default allow)'),
  def('hostname', 'H', 'NAME', both, 'ok', 'Hostname to send via DHCP (option 12)'),
  def('fqdn', undefined, 'NAME', both, 'unsupported', 'FQDN to send via DHCP and DHCPv6'),
  def('print-capabilities', undefined, undefined, ['passt'], 'unsupported', 'Print vhost-user capabilities'),
  def('socket', 's', 'PATH', ['passt'], 'ok', 'UNIX domain socket path for qemu or qrap'),
  def('fd', 'F', 'FD', ['passt'], 'ok', 'Use the pre-opened, connected socket FD'),
  def('one-off', '1', undefined, ['passt'], 'ok', 'Quit after handling a single client connection'),
  def('vhost-user', undefined, undefined, ['passt'], 'unsupported', 'Act as a vhost-user backend'),
  def('repair-path', undefined, 'PATH', ['passt'], 'unsupported', 'Socket for TCP_REPAIR helper (migration)'),
  def('migrate-exit', undefined, undefined, ['passt'], 'unsupported', 'Exit after migration'),
  def('migrate-no-linger', undefined, undefined, ['passt'], 'unsupported', 'Close sockets after migration'),
  def('tcp-ports', 't', 'SPEC', both, 'ok', 'TCP port forwarding to guest or namespace'),
  def('udp-ports', 'u', 'SPEC', both, 'ok', 'UDP port forwarding to guest or namespace'),
  def('tcp-ns', 'T', 'SPEC', ['pasta'], 'ok', 'TCP port forwarding from namespace to host'),
  def('udp-ns', 'U', 'SPEC', ['pasta'], 'ok', 'UDP port forwarding from namespace to host'),
  def('ns-ifname', 'I', 'NAME', ['pasta'], 'ok', 'Name of the tap interface in the namespace'),
  def('userns', undefined, 'PATH', ['pasta'], 'ok', 'Target user namespace to join'),
  def('netns', undefined, 'PATH|NAME', ['pasta'], 'ok', 'Target network namespace to join'),
  def('netns-only', undefined, undefined, ['pasta'], 'ok', 'Join only the network namespace'),
  def('no-netns-quit', undefined, undefined, ['pasta'], 'ok', "Don't quit when the target namespace is gone"),
  def('config-net', undefined, undefined, ['pasta'], 'ok', 'Configure addresses, routes and MTU in the namespace'),
  def('ns-mac-addr', undefined, 'ADDR', ['pasta'], 'ok', 'MAC address of the tap interface in the namespace'),
  def('no-splice', undefined, undefined, ['pasta'], 'ok', "Don't use the splice fast path for local traffic"),
  // Newer pasta copies every route and address of the host's interface
  // unless told not to; --config-net here sets one address and the
  // default route, which is what these ask for: accepted as they are.
  def('no-copy-routes', undefined, undefined, ['pasta'], 'ok', "Don't copy all the host's routes (only the default route is ever set)"),
  def('no-copy-addrs', undefined, undefined, ['pasta'], 'ok', "Don't copy all the host's addresses (only one is ever set)"),
  // Newer pasta sends the host's loopback clients of -t/-u to the
  // namespace from its public address unless given this; here they are
  // always spliced to the namespace's loopback (unless --no-splice).
  def('host-lo-to-ns-lo', undefined, undefined, ['pasta'], 'ok', "Map host loopback to the namespace's loopback (always done, unless --no-splice)"),
];

export const BY_LONG = new Map(OPTIONS.map((o) => [o.long, o]));
export const BY_SHORT = new Map(OPTIONS.filter((o) => o.short).map((o) => [o.short!, o]));

/** How an option is written in messages: as the user typed it. */
export function spelled(o: OptionDef, asShort: boolean): string {
  return asShort && o.short ? `-${o.short}` : `--${o.long}`;
}

/** The usage text, grouped like the man page. */
export function usage(mode: Mode): string {
  const synopsis =
    mode === 'passt'
      ? 'Usage: passt [OPTION]...'
      : 'Usage: pasta [OPTION]... [COMMAND [ARG]...]\n       pasta [OPTION]... PID\n       pasta [OPTION]... --netns [PATH|NAME]';
  const lines = [synopsis, ''];
  const groups: [OptionDef['group'], string][] = [
    ['common', 'Options'],
    [mode, `${mode}-only options`],
  ];
  for (const [group, title] of groups) {
    lines.push(`${title}:`);
    for (const o of OPTIONS.filter((x) => x.group === group && x.modes.includes(mode))) {
      const flag = `${o.short ? `-${o.short}, ` : '    '}--${o.long}${o.value ? ` ${o.value}` : ''}`;
      const note = o.status === 'ok' ? '' : o.status === 'later' ? ' (not supported yet)' : ' (not supported)';
      lines.push(`  ${flag.padEnd(44)} ${o.help}${note}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
