// HTTP test peer shared by the TCP tests: `python3 srv.py PORT DIR ADDR...`
// serves DIR on PORT at each ADDR ('::' takes IPv4 too); GET serves files,
// PUT answers the body's sha256, every request prints "client ADDR".
export const httpServer = `
import hashlib, http.server, os, socket, sys, threading
class H(http.server.SimpleHTTPRequestHandler):
    def do_PUT(self):
        left = int(self.headers['Content-Length']); h = hashlib.sha256()
        while left:
            b = self.rfile.read(min(left, 1 << 20))
            if not b: break
            h.update(b); left -= len(b)
        self.send_response(200); self.end_headers(); self.wfile.write((h.hexdigest() + "\\n").encode())
    def log_message(self, fmt, *a):
        print("client", self.client_address[0], flush=True)
port = int(sys.argv[1]); os.chdir(sys.argv[2])
def serve(addr):
    class S(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    S((addr, port), H).serve_forever()
for addr in sys.argv[4:]:
    threading.Thread(target=serve, args=(addr,), daemon=True).start()
serve(sys.argv[3])
`;
