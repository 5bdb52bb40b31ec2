// The decision worker's flat flows (flow-words.ts) against the words the
// addon writes (policy::flow_words' fixtures) and Rust's address text.
import test from 'ava';
import { FLOW_WORDS, flowFromWords } from '../../ts/flow-words.js';

const words = (...w: number[]) => {
  const a = new Uint32Array(FLOW_WORDS);
  a.set(w);
  return a;
};

test('an IPv4 UDP flow, as policy::flow_words writes it', (t) => {
  t.deepEqual(flowFromWords(words(0, 1, 4, 40000, 53, 0x0a00020f, 0, 0, 0, 0xc0000201)), {
    proto: 'udp',
    direction: 'outbound',
    src: { addr: '10.0.2.15', port: 40000 },
    dst: { addr: '192.0.2.1', port: 53 },
  });
});

test('an inbound IPv6 TCP flow, mapped IPv4 printed as ::ffff:a.b.c.d', (t) => {
  t.deepEqual(flowFromWords(words(1, 0, 6, 8080, 80, 0xfd000000, 0, 0, 2, 0, 0, 0xffff, 0x01020304)), {
    proto: 'tcp',
    direction: 'inbound',
    src: { addr: 'fd00::2', port: 8080 },
    dst: { addr: '::ffff:1.2.3.4', port: 80 },
  });
});

test('IPv6 text matches Rust: first longest zero run, runs of one stay', (t) => {
  // Left: the words; right: what Rust's Ipv6Addr Display prints for them.
  const cases: [number[], string][] = [
    [[0, 0, 0, 0], '::'],
    [[0, 0, 0, 1], '::1'],
    [[0, 0, 0, 0x01020304], '::102:304'],
    [[0x10000, 0x2, 0, 3], '1:0:0:2::3'],
    [[0x10000, 0x2, 0, 0x30004], '1::2:0:0:3:4'],
    [[0xfd000000, 0x1, 0, 0], 'fd00:0:0:1::'],
    [[0, 0x10000, 0, 0], '0:0:1::'],
    [[0x10000, 0x20000, 0x30000, 0x40000], '1:0:2:0:3:0:4:0'],
    [[0xfe800000, 0, 0xffff, 1], 'fe80::ffff:0:1'],
    [[0x20010db8, 0xabcd0000, 0, 0xff], '2001:db8:abcd::ff'],
  ];
  for (const [w, text] of cases) t.is(flowFromWords(words(0, 2, 6, 0, 0, ...w)).src.addr, text, text);
  t.is(flowFromWords(words(0, 2, 6)).proto, 'icmp');
});

test('IPv4 text stays right past the cache of recent addresses', (t) => {
  // More addresses than the cache holds, twice over: each read back as
  // it was written, before and after the cache starts over.
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 3000; i++) {
      const a = (10 << 24) | (i << 4) | round;
      const text = `10.${(i >> 12) & 255}.${(i >> 4) & 255}.${((i & 15) << 4) | round}`;
      const f = flowFromWords(words(0, 0, 4, 1, 2, 0x7f000001, 0, 0, 0, a >>> 0));
      if (f.dst.addr !== text || f.src.addr !== '127.0.0.1') return t.fail(`${a >>> 0}: ${f.dst.addr}, not ${text}`);
    }
  }
  t.pass();
});
