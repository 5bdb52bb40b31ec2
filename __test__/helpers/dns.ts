// DNS test peer shared by the pasta and qemu tests.
// A tiny authoritative DNS server on the addresses given as arguments,
// port 53, UDP and TCP:
// A test.example. = 203.0.113.7, AAAA = 2001:db8::7; logs each query.
export const dnsServer = `
import socket, struct, threading
def answer(q):
    i = 12; labels = []
    while q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode()); i += 1 + q[i]
    qtype = struct.unpack("!H", q[i + 1:i + 3])[0]; end = i + 5
    name = ".".join(labels) + "."
    rdata = {1: socket.inet_pton(socket.AF_INET, "203.0.113.7"), 28: socket.inet_pton(socket.AF_INET6, "2001:db8::7")}.get(qtype) if name == "test.example." else None
    flags = 0x8400 if rdata or name == "test.example." else 0x8403
    head = q[:2] + struct.pack("!HHHHH", flags, 1, 1 if rdata else 0, 0, 0)
    body = q[12:end]
    if rdata: body += b"\\xc0\\x0c" + struct.pack("!HHIH", qtype, 1, 60, len(rdata)) + rdata
    print("query", name, qtype, flush=True)
    return head + body
def udp(fam, addr):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((addr, 53))
    while True:
        q, a = s.recvfrom(4096); s.sendto(answer(q), a)
def tcp(fam, addr):
    s = socket.socket(fam, socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((addr, 53)); s.listen()
    while True:
        c, a = s.accept(); n = struct.unpack("!H", c.recv(2))[0]; q = b""
        while len(q) < n: q += c.recv(n - len(q))
        r = answer(q); c.sendall(struct.pack("!H", len(r)) + r); c.close()
import sys
for addr in sys.argv[1:]:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    for f in (udp, tcp):
        threading.Thread(target=f, args=(fam, addr), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
`;
