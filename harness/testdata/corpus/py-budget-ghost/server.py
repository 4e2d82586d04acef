# Protohackers 3, Budget Chat, with a thread per client.
# Its bug: a user is removed only when its connection ends cleanly (EOF). A reset raises out
# of the read loop and kills the thread, and the user stays in the room as a ghost whose
# socket is closed: the room is never told it left, and the next broadcast to it raises in
# whichever thread sends it, which disconnects that client (the next newcomer, for one).
import socket
import sys
import threading

users = {}  # name -> socket
lock = threading.Lock()


def broadcast(text, exclude=None):
    with lock:
        for name, sock in list(users.items()):
            if name != exclude:
                sock.sendall(text.encode())


def handle(conn):
    with conn:
        conn.sendall(b"Welcome to budgetchat! What shall I call you?\n")
        f = conn.makefile("r", encoding="utf-8", errors="replace", newline="\n")
        name = f.readline().strip()
        if not name or not name.isalnum() or not name.isascii():
            conn.sendall(b"Illegal name, bye.\n")
            return
        with lock:
            if name in users:
                conn.sendall(b"That name is taken, bye.\n")
                return
            conn.sendall(f"* The room contains: {', '.join(users)}\n".encode())
            users[name] = conn
        broadcast(f"* {name} has entered the room\n", exclude=name)
        for line in f:
            broadcast(f"[{name}] {line.rstrip()}\n", exclude=name)
        with lock:
            del users[name]
        broadcast(f"* {name} has left the room\n")


port = int(sys.argv[1]) if len(sys.argv) > 1 else 5555
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen()
print("listening on", port)
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
