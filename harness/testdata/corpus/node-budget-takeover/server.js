// Protohackers 3, Budget Chat, with Node's net module.
// Its bug: the room is an object keyed by name, and a taken name is not checked, so a second
// "alice" replaces the first one's entry: the first alice stops hearing the room, and when
// either alice leaves, the name is gone for both.
const net = require('net');

const port = Number(process.argv[2] || 5555);
const users = {}; // name -> socket

function broadcast(from, text) {
  for (const name of Object.keys(users)) {
    if (name !== from) users[name].write(text);
  }
}

const server = net.createServer((socket) => {
  let name = null;
  let buffer = '';
  socket.write('Welcome to budgetchat! What shall I call you?\n');

  socket.on('data', (data) => {
    buffer += data.toString();
    const lines = buffer.split('\n');
    buffer = lines.pop();
    for (const raw of lines) {
      const line = raw.replace(/\r$/, '');
      if (name === null) {
        if (!/^[a-zA-Z0-9]+$/.test(line)) {
          socket.end('illegal name\n');
          return;
        }
        name = line;
        socket.write('* The room contains: ' + Object.keys(users).join(', ') + '\n');
        broadcast(name, `* ${name} has entered the room\n`);
        users[name] = socket;
      } else {
        broadcast(name, `[${name}] ${line}\n`);
      }
    }
  });

  socket.on('error', () => {});

  socket.on('close', () => {
    if (name !== null && users[name]) {
      delete users[name];
      broadcast(name, `* ${name} has left the room\n`);
    }
  });
});

server.listen(port, '127.0.0.1', () => console.log(`listening on ${port}`));
