# A chat relay with asyncio streams.
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
                break  # EOF (maybe in the middle of a line)
            print("Server: received from client:", line.rstrip(b"\r\n").decode(errors="replace"))
            for other in clients:
                if other is not writer:
                    # no drain(): a slow reader gets its lines buffered instead of holding us up
                    other.write(line)
    except (ConnectionError, ValueError):
        pass  # a reset, or a line longer than the reader's limit
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
