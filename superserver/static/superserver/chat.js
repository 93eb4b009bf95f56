// The chat page: what is said in the room and who is in it.
//
// Every message comes with its position in the room's history. The page keeps the last
// one and each reconnect asks for what came after it, so a dropped connection or a
// server restart loses nothing. A reload asks for everything the room keeps. If the
// position is too old to recover from, the server says "reset": the page starts over
// from what the room keeps.
(function () {
  const path = document.currentScript.dataset.url;
  const members = new Map();   // user -> number of open pages
  let position = '';           // '' asks for everything the room keeps

  const connection = connectSocket(() => path + '?since=' + encodeURIComponent(position),
                                   (data) => {
    const frame = JSON.parse(data);
    if (frame.kind === 'members') {
      members.clear();
      Object.entries(frame.members).forEach(([user, count]) => members.set(user, count));
    } else if (frame.reset) {
      document.querySelectorAll('#log li.message').forEach((item) => item.remove());
      note('notice', 'missed too much to catch up: showing what the room keeps');
      position = '';
      connection.socket.close(1000, 'starting over');
      return;
    } else if (frame.position) {
      const message = JSON.parse(frame.data);
      position = frame.position;
      note('message', message.text, message.user);
      return;
    } else {
      const event = JSON.parse(frame.data);   // from the room's presence channel
      if (event.connections) members.set(event.member, event.connections);
      else members.delete(event.member);
      if (event.event === 'join' || event.event === 'leave') {
        note('notice', event.member + (event.event === 'join' ? ' joined' : ' left'));
      }
    }
    const list = document.getElementById('members');
    list.replaceChildren(...[...members.keys()].sort().map((user) => {
      const item = document.createElement('li');
      item.textContent = user;
      return item;
    }));
  });
  sendFromForm(connection, false);
})();
