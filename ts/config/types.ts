// The typed configuration a command line becomes: plain data, validated,
// with nothing left to parse. Host discovery fills what is left undefined.
import type { Mode } from './options.js';
import type { PortForward } from './portspec.js';
import type { GuestOverrides } from '../guest.js';

export type PastaTarget =
  | { kind: 'command'; argv: string[] }
  | { kind: 'pid'; pid: number }
  | { kind: 'netns'; path: string; userns?: string };

export interface Config {
  mode: Mode;
  log: {
    debug: boolean;
    /** --trace: every frame, described (implies debug). */
    trace: boolean;
    quiet: boolean;
    stderr: boolean;
    file?: string;
    /** --log-size: the log file's limit in bytes (default LOG_SIZE). */
    size?: number;
    /** --stats: print counters on exit. */
    stats: boolean;
    /** --log-flows: a line per finished flow. */
    flows: boolean;
    /** --log-format */
    format: 'text' | 'json';
  };
  /** --policy FILE, --policy-timeout MS, --policy-default allow|reject. */
  policy?: { file: string; timeoutMs?: number; default?: 'allow' | 'reject' };
  foreground: boolean;
  pidFile?: string;
  pcap?: string;
  /** -i, --outbound-if4, --outbound-if6 */
  interface?: string;
  outboundIf4?: string;
  outboundIf6?: string;
  /** What the guest is told; unset fields come from the host. */
  guest: GuestOverrides & {
    ipv4: boolean;
    ipv6: boolean;
    noMapGw: boolean;
    /** Whether DNS resolvers and the search list go to the guest via DHCP/NDP/DHCPv6. */
    dhcpDns: boolean;
    dhcpSearch: boolean;
    disabled: Required<NonNullable<GuestOverrides['disabled']>>;
  };
  forward: {
    tcp: PortForward;
    udp: PortForward;
    /** pasta: namespace to host. */
    tcpNs: PortForward;
    udpNs: PortForward;
  };
  passt: {
    socket?: string;
    fd?: number;
    oneOff: boolean;
  };
  pasta: {
    target: PastaTarget;
    ifname?: string;
    configNet: boolean;
    nsMac?: string;
    netnsOnly: boolean;
    noSplice: boolean;
    /** --no-netns-quit */
    noNetnsQuit: boolean;
  };
}
