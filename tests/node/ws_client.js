// Node's ws, as browsers' peers use it, against superserver: connect with ws's default
// permessage-deflate offer, read the server's first message (what the view says was
// negotiated), echo MESSAGES compressible messages and print one JSON line of what
// happened, with the bytes that went over the socket each way.
//
//   node ws_client.js URL [MESSAGES]
const WebSocket = require('ws');

const url = process.argv[2];
const count = Number(process.argv[3] || 20);
const socket = new WebSocket(url);   // perMessageDeflate is on by default
const timer = setTimeout(() => fail('no answer within 20 s'), 20000);
let negotiated = null;
let sent = 0;
let echoed = 0;
let payloadBytes = 0;

function fail(reason) {
  console.log(JSON.stringify({ error: reason }));
  process.exit(1);
}

function message(i) {
  return JSON.stringify({ n: i, text: 'node ws says hello to superserver '.repeat(100) });
}

function sendNext() {
  const text = message(sent);
  payloadBytes += Buffer.byteLength(text);
  sent += 1;
  socket.send(text);
}

socket.on('message', (data, isBinary) => {
  if (negotiated === null) {
    negotiated = data.toString();
    sendNext();
    return;
  }
  if (isBinary || data.toString() !== message(echoed)) fail('echo ' + echoed + ' differs');
  echoed += 1;
  if (echoed < count) sendNext();
  else socket.close(1000);
});

socket.on('close', (code) => {
  clearTimeout(timer);
  console.log(JSON.stringify({
    extensions: socket.extensions, view: negotiated, echoed, code, payloadBytes,
    bytesRead: socket._socket ? socket._socket.bytesRead : null,
    bytesWritten: socket._socket ? socket._socket.bytesWritten : null,
  }));
});

socket.on('error', (error) => fail(String(error)));
