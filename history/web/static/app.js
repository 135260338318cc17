// whenthen history: the page's only script. It shows times in the
// viewer's time zone, and fills the sign-in form from a #token=
// fragment (the sign-in URL `whenthen dev` prints), which never reaches
// the server or its logs. The page works without it, in UTC.
(function () {
  "use strict";
  var fmt = { year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit" };
  var short = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d.getTime())) return;
    el.title = el.textContent;
    el.textContent = d.toLocaleString(undefined, el.dataset.format === "short" ? short : fmt);
  });
  var token = document.getElementById("token");
  var m = /^#token=([A-Za-z0-9_\-]+)$/.exec(window.location.hash);
  if (token && m) {
    token.value = m[1];
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
})();
