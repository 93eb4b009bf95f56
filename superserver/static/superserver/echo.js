// The demo page: a websocket to the echo view, the exchange shown as it happens.
// When the server closes (1012 when it restarts after a code change, 1001 when it
// stops) or the connection drops, the page reconnects, waiting longer each time.
(function () {
  const path = document.currentScript.dataset.url;
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + path;
  const log = document.getElementById('log');
  const status = document.getElementById('status');
  const button = document.getElementById('send');
  const input = document.getElementById('message');
  let socket = null;
  let delay = 250;

  function note(kind, text) {
    const item = document.createElement('li');
    item.className = kind;
    item.textContent = text;
    log.prepend(item);
  }

  function show(text, kind) {
    status.textContent = text;
    status.className = 'status ' + kind;
  }

  function connect() {
    socket = new WebSocket(url);
    socket.onopen = () => {
      delay = 250;
      show('open', 'open');
      button.disabled = false;
      note('event', 'connected to ' + url);
    };
    socket.onmessage = (event) => note('received', event.data);
    socket.onclose = (event) => {
      button.disabled = true;
      note('event', 'closed with code ' + event.code + (event.reason ? ': ' + event.reason : ''));
      show('reconnecting', 'closed');
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5000);
    };
  }

  document.getElementById('form').onsubmit = (event) => {
    event.preventDefault();
    socket.send(input.value);
    note('sent', input.value);
  };
  connect();
})();
