// A chat relay with Node's net module.
// Its bug: it forwards each chunk as it is read instead of whole lines, so when two clients
// send long lines at the same time their pieces arrive interleaved.
const net = require('net');

const port = Number(process.argv[2] || 5555);
const clients = new Set();

const server = net.createServer((socket) => {
  clients.add(socket);
  console.log('Server: client connected');

  socket.on('data', (data) => {
    console.log('Server: received from client: ' + data.toString().trimEnd());
    for (const other of clients) {
      if (other !== socket) other.write(data);
    }
  });

  socket.on('error', (err) => console.log('Server: ' + err.message));

  socket.on('close', () => {
    clients.delete(socket);
    console.log('Server: client disconnected');
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`Server: started. Listening to new connections on port ${port}...`);
});
