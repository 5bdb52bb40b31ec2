// A flow in the flat form the decision worker reads (policy::flow_words
// in the addon): 13 words of a Uint32Array, made into the `FlowInfo` a
// hook gets. The engine writes the words instead of building the object
// through Node-API because that cost a just-woken worker about 10 µs per
// flow; this is a few hundred nanoseconds of JIT-compiled JS. Addresses
// print as the Rust side prints them (RFC 5952: lowercase, the first
// longest run of two or more zero groups as `::`, `::ffff:a.b.c.d`), so
// a flow's addresses read the same in hooks, records and events.
import type { FlowInfo, Proto } from './native.js';

/** Words in one flow: direction, protocol, family, source port,
 * destination port, then the two addresses as four big-endian words
 * (IPv4: the first of its four). */
export const FLOW_WORDS = 13;

const PROTOS: readonly Proto[] = ['tcp', 'udp', 'icmp'];

function v4(w: number): string {
  return `${w >>> 24}.${(w >>> 16) & 255}.${(w >>> 8) & 255}.${w & 255}`;
}

// IPv4 addresses as text, by value: a guest talks to few addresses, and
// a worker woken for each new flow builds strings slowly (cold caches).
const V4_CACHE = 1024;
const v4Text = new Map<number, string>();

function v4Cached(w: number): string {
  let s = v4Text.get(w);
  if (s === undefined) {
    if (v4Text.size >= V4_CACHE) v4Text.clear();
    s = v4(w);
    v4Text.set(w, s);
  }
  return s;
}

function v6(w: Uint32Array, at: number): string {
  if (w[at] === 0 && w[at + 1] === 0 && w[at + 2] === 0xffff) return `::ffff:${v4(w[at + 3]!)}`;
  const g: number[] = [];
  for (let i = 0; i < 4; i++) g.push(w[at + i]! >>> 16, w[at + i]! & 0xffff);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (from: number, to: number) => g.slice(from, to).map((x) => x.toString(16)).join(':');
  return best < 0 ? hex(0, 8) : `${hex(0, best)}::${hex(best + bestLen, 8)}`;
}

/** The flow written in `w`, and which hook decides on it. */
export function flowFromWords(w: Uint32Array): FlowInfo {
  const six = w[2] === 6;
  return {
    proto: PROTOS[w[1]!] ?? 'tcp',
    direction: w[0] === 1 ? 'inbound' : 'outbound',
    src: { addr: six ? v6(w, 5) : v4Cached(w[5]!), port: w[3]! },
    dst: { addr: six ? v6(w, 9) : v4Cached(w[9]!), port: w[4]! },
  };
}
