# A chat relay on socketserver.ThreadingTCPServer: a thread per client, each line written
# straight to every other client.
import socketserver
import sys
import threading

clients = set()
lock = threading.Lock()


class ChatHandler(socketserver.StreamRequestHandler):
    def handle(self):
        with lock:
            clients.add(self)
        print("Server: client connected")
        try:
            for line in self.rfile:
                if not line.endswith(b"\n"):
                    break
                print("Server: received from client:", line.rstrip(b"\r\n").decode(errors="replace"))
                with lock:
                    for other in clients:
                        if other is not self:
                            try:
                                other.wfile.write(line)
                            except OSError:
                                pass  # that one is leaving; its own thread removes it
        except OSError:
            pass
        finally:
            with lock:
                clients.discard(self)
            print("Server: client disconnected")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


port = int(sys.argv[1]) if len(sys.argv) > 1 else 5555
with Server(("127.0.0.1", port), ChatHandler) as server:
    print(f"Server: started. Listening to new connections on port {port}...")
    server.serve_forever()
