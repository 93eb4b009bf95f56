// Node's ws offering subprotocols, as a new user would: prints one JSON line, the
// subprotocol agreed once the socket is open, or the error ws refused it with.
//
//   node subprotocols.js URL [SUBPROTOCOL...]
const WebSocket = require('ws');

const socket = new WebSocket(process.argv[2], process.argv.slice(3));
const timer = setTimeout(() => done({ error: 'no answer within 10 s' }), 10000);

function done(result) {
  clearTimeout(timer);
  console.log(JSON.stringify(result));
  socket.terminate();
}

socket.on('open', () => done({ protocol: socket.protocol }));
socket.on('error', (error) => done({ error: error.message }));
