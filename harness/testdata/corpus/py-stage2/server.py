# Stage 2 of the article in Python: whole lines from one client, SO_REUSEADDR.
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 5555

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen()
print(f"Server: started. Listening to new connections on port {port}...")

client, address = server.accept()
print("Server: client connected")

for line in client.makefile("r", encoding="utf-8", errors="replace", newline=""):
    print("Server: received from client:", line.rstrip("\r\n"))

print("Server: client disconnected")
client.close()
server.close()
