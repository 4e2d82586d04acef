# A chat relay on select(): every socket non-blocking, an output buffer per client, and
# writability asked for only while that buffer has something in it.
# Its bug: each line is decoded as UTF-8 (strictly) in the main loop, so a line that is not
# valid UTF-8 raises UnicodeDecodeError and the whole server dies.
import select
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 5555

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", port))
server.listen()
server.setblocking(False)
print(f"Server: started. Listening to new connections on port {port}...")

inbuf = {}   # socket -> bytes of an unfinished line
outbuf = {}  # socket -> bytearray of bytes waiting to be sent


def drop(sock):
    del inbuf[sock]
    del outbuf[sock]
    sock.close()
    print("Server: client disconnected")


while True:
    writers = [s for s in outbuf if outbuf[s]]
    readable, writable, _ = select.select([server] + list(inbuf), writers, [])
    for sock in readable:
        if sock is server:
            conn, _ = server.accept()
            conn.setblocking(False)
            inbuf[conn] = b""
            outbuf[conn] = bytearray()
            print("Server: client connected")
            continue
        if sock not in inbuf:
            continue
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            continue
        except ConnectionError:
            data = b""
        if not data:
            drop(sock)
            continue
        *lines, inbuf[sock] = (inbuf[sock] + data).split(b"\n")
        for raw in lines:
            message = raw.decode("utf-8").rstrip("\r")
            print("Server: received from client:", message)
            for other in outbuf:
                if other is not sock:
                    outbuf[other] += raw + b"\n"
    for sock in writable:
        if sock not in outbuf:
            continue
        try:
            sent = sock.send(outbuf[sock])
            del outbuf[sock][:sent]
        except BlockingIOError:
            pass
        except ConnectionError:
            drop(sock)
