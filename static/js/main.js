// Entry point of the page: checks the server and reports its state in the header.
const health = document.getElementById("health");
fetch("/api/health")
  .then((r) => r.json())
  .then((h) => { health.textContent = `server ${h.status}`; health.dataset.status = h.status; })
  .catch((e) => { health.textContent = `server unreachable: ${e}`; });
