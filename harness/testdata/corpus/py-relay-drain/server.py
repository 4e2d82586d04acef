# A chat relay with asyncio streams, awaiting drain() after each write as the docs advise.
# Its bug: the sender's handler awaits every receiver's drain() in turn, so one client that
# stops reading stops the sender's loop, and with it everyone else's lines.
import asyncio
import sys

clients = set()


async def handle(reader, writer):
    clients.add(writer)
    print("Server: client connected")
    try:
        while True:
            line = await reader.readline()
            if not line.endswith(b"\n"):
                break
            print("Server: received from client:", line.rstrip(b"\r\n").decode(errors="replace"))
            for other in list(clients):
                if other is not writer:
                    try:
                        other.write(line)
                        await other.drain()
                    except ConnectionError:
                        pass  # that one is gone; its own handler cleans up
    except (ConnectionError, ValueError):
        pass
    finally:
        clients.discard(writer)
        writer.close()
        print("Server: client disconnected")


async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 5555
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print(f"Server: started. Listening to new connections on port {port}...")
    async with server:
        await server.serve_forever()


asyncio.run(main())
