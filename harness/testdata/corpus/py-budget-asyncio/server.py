# Protohackers 3, Budget Chat, with asyncio.
import asyncio
import sys

users = {}  # name -> StreamWriter


def broadcast(text, exclude=None):
    for name, writer in users.items():
        if name != exclude:
            writer.write(text.encode())


def valid(name):
    return 1 <= len(name) <= 32 and name.isascii() and name.isalnum()


async def handle(reader, writer):
    name = None
    try:
        writer.write(b"Welcome to budgetchat! What shall I call you?\n")
        line = await reader.readline()
        name = line.decode(errors="replace").strip()
        if not valid(name) or name in users:
            name = None
            return  # just hang up
        writer.write(("* The room contains: " + ", ".join(users) + "\n").encode())
        broadcast(f"* {name} has entered the room\n")
        users[name] = writer
        while True:
            line = await reader.readline()
            if not line:
                break
            message = line.decode(errors="replace").rstrip("\r\n")
            broadcast(f"[{name}] {message}\n", exclude=name)
    except (ConnectionError, ValueError):
        pass
    finally:
        if name is not None and users.get(name) is writer:
            del users[name]
            broadcast(f"* {name} has left the room\n")
        writer.close()


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5555
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print(f"listening on port {port}")
    async with server:
        await server.serve_forever()


asyncio.run(main())
