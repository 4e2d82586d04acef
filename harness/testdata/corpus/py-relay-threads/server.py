# A chat relay with threads: one thread reads each client, one thread writes to it, so a
# client that stops reading only fills its own queue.
import queue
import socket
import sys
import threading

port = int(sys.argv[1]) if len(sys.argv) > 1 else 5555

clients = {}  # socket -> queue of lines to send it
lock = threading.Lock()


def writer(sock, q):
    while True:
        # Send whatever has piled up in one go: one sendall per line is slow with many threads.
        batch = [q.get()]
        while not q.empty():
            batch.append(q.get_nowait())
        if None in batch:
            return
        try:
            sock.sendall(b"".join(batch))
        except OSError:
            return


def handle(sock):
    q = queue.Queue()
    with lock:
        clients[sock] = q
    threading.Thread(target=writer, args=(sock, q), daemon=True).start()
    print("Server: client connected")
    try:
        for line in sock.makefile("rb"):
            if not line.endswith(b"\n"):
                break  # the client left in the middle of a line
            print("Server: received from client:", line.rstrip(b"\r\n").decode(errors="replace"))
            with lock:
                targets = [other_q for other, other_q in clients.items() if other is not sock]
            for other_q in targets:
                other_q.put(line)
    except OSError:
        pass
    with lock:
        del clients[sock]
    q.put(None)
    sock.close()
    print("Server: client disconnected")


server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen()
print(f"Server: started. Listening to new connections on port {port}...")
while True:
    conn, addr = server.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
