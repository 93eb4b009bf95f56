// The clock page: one Server-Sent Event a second. EventSource reconnects by itself and
// sends the last id it saw, so the server resumes where the page left off.
(function () {
  const source = new EventSource(document.currentScript.dataset.url);
  const status = document.getElementById('status');
  let count = 0;
  source.onopen = () => { status.textContent = 'open'; status.className = 'status open'; };
  source.onerror = () => { status.textContent = 'reconnecting'; status.className = 'status closed'; };
  source.onmessage = (event) => {
    count += 1;
    document.getElementById('time').textContent = event.data;
    document.getElementById('count').textContent = count;
    document.getElementById('last-id').textContent = event.lastEventId;
  };
})();
