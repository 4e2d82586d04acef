# py-house-threads with the one habit the lesson rules out: every line goes to every client,
# its speaker included, as if the room were an echo. Otherwise the same house style: a
# greeting, who joined and who left, each line with its speaker's name in front.
import itertools
import queue
import socket
import sys
import threading

port = int(sys.argv[1]) if len(sys.argv) > 1 else 5555

clients = {}  # socket -> queue of bytes to send it
lock = threading.Lock()
numbers = itertools.count(1)


def writer(sock, q):
    while True:
        batch = [q.get()]
        while not q.empty():
            batch.append(q.get_nowait())
        if None in batch:
            return
        try:
            sock.sendall(b"".join(batch))
        except OSError:
            return


def tell_others(sock, data):
    with lock:
        targets = [q for other, q in clients.items() if other is not sock]
    for q in targets:
        q.put(data)


def handle(sock):
    name = f"guest-{next(numbers)}"
    q = queue.Queue()
    q.put(f"Welcome to the room, {name}! Type a line and press Enter.\r\n".encode())
    threading.Thread(target=writer, args=(sock, q), daemon=True).start()
    tell_others(sock, f"* {name} joined\r\n".encode())
    with lock:
        clients[sock] = q
    print(f"{name} connected", flush=True)
    try:
        for line in sock.makefile("rb"):
            if not line.endswith(b"\n"):
                break  # left in the middle of a line
            tell_others(None, f"<{name}> ".encode() + line)
    except OSError:
        pass
    with lock:
        del clients[sock]
    q.put(None)
    sock.close()
    tell_others(sock, f"{name} disconnected\r\n".encode())
    print(f"{name} disconnected", flush=True)


server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen()
print(f"chat room open on port {port}", flush=True)
while True:
    conn, _ = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
