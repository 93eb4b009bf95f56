// The echo page: what you send comes back from the echo view.
(function () {
  const connection = connectSocket(document.currentScript.dataset.url,
                                   (data) => note('received', data));
  sendFromForm(connection, true);
})();
