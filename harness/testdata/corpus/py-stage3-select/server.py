# Stage 3 of the article in Python: many clients, one loop, select() to see who has data.
import select
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 5555

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen()
print(f"Server: started. Listening to new connections on port {port}...")

clients = {}  # socket -> bytes received so far that are not a whole line yet

while True:
    readable, _, _ = select.select([server] + list(clients), [], [])
    for sock in readable:
        if sock is server:
            conn, _ = server.accept()
            clients[conn] = b""
            print("Server: client connected")
            continue
        try:
            data = sock.recv(4096)
        except ConnectionError:
            data = b""
        if not data:
            del clients[sock]
            sock.close()
            print("Server: client disconnected")
            continue
        *lines, clients[sock] = (clients[sock] + data).split(b"\n")
        for line in lines:
            print("Server: received from client:", line.rstrip(b"\r").decode(errors="replace"))
