// Follows a running build's log through Server-Sent Events; the page is complete without this script.
(function () {
  "use strict";
  var log = document.getElementById("log");
  if (!log || log.dataset.live !== "yes" || !window.EventSource) { return; }
  var last = parseInt(log.dataset.after, 10);
  var status = document.getElementById("status");
  var badge = document.getElementById("follow-state");
  var source = new EventSource(log.dataset.events + "?after=" + last);

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
  }

  function lineElement(data) {
    var row = document.createElement("div");
    row.className = "line s-" + data.stream;
    row.id = "L" + data.n;
    var number = document.createElement("a");
    number.className = "n";
    number.href = "#L" + data.n;
    number.textContent = String(data.n);
    var text = document.createElement("span");
    text.className = "t";
    data.spans.forEach(function (run) {
      if (run[0]) {
        var span = document.createElement("span");
        span.className = run[0];
        span.textContent = run[1];
        text.appendChild(span);
      } else {
        text.appendChild(document.createTextNode(run[1]));
      }
    });
    row.appendChild(number);
    row.appendChild(text);
    return row;
  }

  source.addEventListener("line", function (event) {
    var data = JSON.parse(event.data);
    if (data.seq <= last) { return; }
    var follow = nearBottom();
    last = data.seq;
    var empty = document.getElementById("empty-log");
    if (empty) { empty.remove(); }
    log.appendChild(lineElement(data));
    if (follow) { window.scrollTo(0, document.body.scrollHeight); }
  });

  source.addEventListener("state", function (event) {
    var data = JSON.parse(event.data);
    status.textContent = data.label;
    status.className = "status status-" + data.status;
    status.dataset.status = data.status;
  });

  source.addEventListener("end", function () {
    source.close();
    if (badge) { badge.textContent = "ended"; badge.className = "follow ended"; }
    window.location.reload();
  });
})();
