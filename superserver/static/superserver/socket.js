// A websocket to a path of this site (or to the path a function gives at each connect)
// that reconnects when the server closes it (1012
// when it restarts after a code change, 1001 when it stops) or the connection drops,
// waiting longer after each failure. It keeps the page's status badge and Send button
// in step, and notes connects and closes in the page's log.
//
// Leaving the page closes the socket, even when the browser keeps the page in its
// back/forward cache (it would keep the socket open too); coming back reconnects.
function connectSocket(path, onmessage) {
  const origin = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;
  const status = document.getElementById('status');
  const button = document.getElementById('send');
  const connection = { socket: null, delay: 250, hidden: false };

  window.addEventListener('pagehide', () => {
    connection.hidden = true;
    connection.socket.close(1000, 'page hidden');
  });
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) {
      connection.hidden = false;
      connect();
    }
  });

  function show(text, kind) {
    status.textContent = text;
    status.className = 'status ' + kind;
  }

  function connect() {
    const url = origin + (typeof path === 'function' ? path() : path);
    const socket = new WebSocket(url);
    connection.socket = socket;
    socket.onopen = () => {
      connection.delay = 250;
      show('open', 'open');
      button.disabled = false;
      // What the browser and the server agreed to, permessage-deflate usually.
      note('event', 'connected to ' + url
           + (socket.extensions ? ' with ' + socket.extensions : ''));
    };
    socket.onmessage = (event) => onmessage(event.data);
    socket.onclose = (event) => {
      if (connection.hidden) return;
      button.disabled = true;
      note('event', 'closed with code ' + event.code + (event.reason ? ': ' + event.reason : ''));
      show('reconnecting', 'closed');
      setTimeout(connect, connection.delay);
      connection.delay = Math.min(connection.delay * 2, 5000);
    };
  }

  connect();
  return connection;
}

// Add a line at the top of the page's log.
function note(kind, text, user) {
  const item = document.createElement('li');
  item.className = kind;
  if (user) {
    const name = document.createElement('span');
    name.className = 'user';
    name.textContent = user + ': ';
    item.append(name);
  }
  item.append(text);
  document.getElementById('log').prepend(item);
}

// Send what the page's form holds, and note it when asked to.
function sendFromForm(connection, shown) {
  const input = document.getElementById('message');
  document.getElementById('form').onsubmit = (event) => {
    event.preventDefault();
    connection.socket.send(input.value);
    if (shown) note('sent', input.value);
    input.value = shown ? input.value : '';
  };
}
