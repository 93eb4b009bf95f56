// The chat page: messages and join/leave notices of everyone in the room.
(function () {
  const connection = connectSocket(document.currentScript.dataset.url, (data) => {
    const message = JSON.parse(data);
    if (message.kind === 'message') {
      note('message', message.text, message.user);
    } else {
      note('notice', message.user + (message.kind === 'join' ? ' joined' : ' left'));
    }
  });
  sendFromForm(connection, false);
})();
