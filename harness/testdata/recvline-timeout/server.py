# The article's stage 3 in Python: a non-blocking accept in a loop, and for each client a read
# that waits up to 1 ms for a line, as Nim's recvLine(timeout = 1). With a client connected
# the loop sleeps in that wait; with none, it spins on accept and burns a core.
import select
import socket
import sys

server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
server.setblocking(False)
print("Server: started. Listening to new connections on port", sys.argv[1], flush=True)
clients = {}
while True:
    try:
        client, _ = server.accept()
        clients[client] = b""
        print("Server: client connected", flush=True)
    except BlockingIOError:
        pass
    for client in list(clients):
        ready, _, _ = select.select([client], [], [], 0.001)
        if not ready:
            continue
        data = client.recv(4096)
        if not data:
            del clients[client]
            print("Server: client disconnected", flush=True)
            continue
        clients[client] += data
        while b"\n" in clients[client]:
            line, clients[client] = clients[client].split(b"\n", 1)
            print("Server: received from client:", line.decode(errors="replace").rstrip("\r"), flush=True)
