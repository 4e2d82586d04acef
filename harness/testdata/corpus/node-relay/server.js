// A chat relay with Node's net module: whole lines, to every other client.
const net = require('net');

const port = Number(process.argv[2] || 5555);
const clients = new Set();

const server = net.createServer((socket) => {
  clients.add(socket);
  console.log('Server: client connected');
  let pending = Buffer.alloc(0);

  socket.on('data', (data) => {
    pending = Buffer.concat([pending, data]);
    let i;
    while ((i = pending.indexOf(10)) !== -1) {
      const line = pending.subarray(0, i + 1);
      pending = pending.subarray(i + 1);
      console.log('Server: received from client: ' + line.toString().trimEnd());
      for (const other of clients) {
        if (other !== socket) other.write(line);
      }
    }
  });

  socket.on('error', (err) => {
    console.log('Server: ' + err.message);
  });

  socket.on('close', () => {
    clients.delete(socket);
    console.log('Server: client disconnected');
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`Server: started. Listening to new connections on port ${port}...`);
});
