// Protohackers 3, Budget Chat, with Node's net module.
const net = require('net');

const port = Number(process.argv[2] || 5555);
const users = new Map(); // socket -> name

function tellOthers(except, text) {
  for (const [sock] of users) {
    if (sock !== except) sock.write(text);
  }
}

const server = net.createServer((socket) => {
  let name = null;
  let buffer = '';
  socket.setEncoding('utf8');
  socket.write("Hi! What's your name?\n");

  socket.on('data', (chunk) => {
    buffer += chunk;
    let i;
    while ((i = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, i).replace(/\r$/, '');
      buffer = buffer.slice(i + 1);
      if (name === null) {
        const wanted = line.trim();
        if (!/^[A-Za-z0-9]{1,32}$/.test(wanted)) {
          socket.end('* invalid name, bye\n');
          buffer = '';
          return;
        }
        if ([...users.values()].includes(wanted)) {
          socket.end('* that name is taken, bye\n');
          buffer = '';
          return;
        }
        name = wanted;
        socket.write(`* here: ${[...users.values()].join(', ')}\n`);
        tellOthers(socket, `* ${name} joined\n`);
        users.set(socket, name);
      } else {
        tellOthers(socket, `[${name}] ${line}\n`);
      }
    }
  });

  socket.on('error', (err) => {
    console.log(`socket error: ${err.message}`);
  });

  socket.on('close', () => {
    if (users.has(socket)) {
      users.delete(socket);
      tellOthers(socket, `* ${name} left\n`);
    }
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`budget chat listening on ${port}`);
});
