# Stage 1 of the article in Python: one client, read 10 bytes at a time.
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 5555

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(("127.0.0.1", port))
server.listen()
print(f"Server: started. Listening to new connections on port {port}...")

client, address = server.accept()
print("Server: client connected")

while True:
    message = client.recv(10)
    if not message:
        break
    print("Server: received from client:", message.decode(errors="replace"))

print("Server: client disconnected")
client.close()
server.close()
