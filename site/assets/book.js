// The book's few behaviours: contents menu, theme toggle, copy buttons,
// arrow keys between chapters, and search. Plain JavaScript, no libraries;
// everything works from a page opened from disk.
(function () {
  "use strict";
  var root = document.documentElement;
  var base = document.body.getAttribute("data-root") || "";

  // Contents menu, on narrow screens.
  var menu = document.getElementById("menu");
  if (menu) {
    menu.addEventListener("click", function () {
      var open = document.body.classList.toggle("toc-open");
      menu.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // Theme: follows the system until the reader picks one, then remembers it.
  var toggle = document.getElementById("theme");
  function current() {
    var t = root.getAttribute("data-theme");
    if (t) return t;
    return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  function label() {
    var next = current() === "dark" ? "light" : "dark";
    toggle.setAttribute("aria-label", "Switch to the " + next + " theme");
    toggle.textContent = next === "dark" ? "Dark" : "Light";
  }
  if (toggle) {
    label();
    toggle.addEventListener("click", function () {
      var next = current() === "dark" ? "light" : "dark";
      root.setAttribute("data-theme", next);
      try { localStorage.setItem("theme", next); } catch (e) { /* private mode: not remembered */ }
      label();
    });
  }

  // Copy buttons: the code without line numbers or diff markers.
  Array.prototype.forEach.call(document.querySelectorAll("pre.code"), function (pre) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy";
    button.setAttribute("aria-label", "Copy the code");
    button.addEventListener("click", function () {
      var lines = Array.prototype.map.call(pre.querySelectorAll(".line:not(.del) .cl"), function (cl) {
        return cl.textContent;
      });
      var text = lines.join("\n") + "\n";
      var done = function () { button.textContent = "Copied"; setTimeout(function () { button.textContent = "Copy"; }, 1500); };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(text).then(done, function () { button.textContent = "Select and copy"; });
      } else {
        button.textContent = "Select and copy";
      }
    });
    var holder = pre.parentNode.tagName === "FIGURE" ? pre.parentNode : pre;
    holder.classList.add("has-copy");
    holder.insertBefore(button, holder.firstChild);
  });

  // Left and right arrows: previous and next chapter.
  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    var t = e.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.isContentEditable)) return;
    var rel = e.key === "ArrowLeft" ? "prev" : e.key === "ArrowRight" ? "next" : "";
    var link = rel && document.querySelector('a[rel="' + rel + '"]');
    if (link) window.location.href = link.href;
  });

  // Search: the index is a script, loaded the first time it is needed, so
  // that it works from disk too (browsers refuse fetch() of file: URLs).
  var input = document.getElementById("search");
  var results = document.getElementById("search-results");
  if (!input || !results) return;
  // Whatever asks for the index while it loads runs once it has loaded:
  // a reader who types before it arrives still gets results.
  var waiting = null;
  function load(then) {
    if (window.bookIndex) return then();
    if (waiting) { waiting.push(then); return; }
    waiting = [then];
    var s = document.createElement("script");
    s.src = base + "assets/search-index.js";
    s.onload = function () {
      var todo = waiting;
      waiting = null;
      todo.forEach(function (f) { f(); });
    };
    document.head.appendChild(s);
  }
  function words(text) {
    return text.toLowerCase().split(/[^a-z0-9_]+/).filter(function (w) { return w.length > 0; });
  }
  function search(query) {
    var terms = words(query);
    if (terms.length === 0) return [];
    var found = [];
    window.bookIndex.forEach(function (s) {
      var score = 0;
      var title = " " + s.t.toLowerCase();
      for (var i = 0; i < terms.length; i++) {
        var inTitle = title.indexOf(" " + terms[i]) >= 0 || title.indexOf(terms[i]) >= 0;
        var inText = s.w.indexOf(" " + terms[i]) >= 0;
        if (!inTitle && !inText) return;
        score += (inTitle ? 10 : 0) + (inText ? 1 : 0);
      }
      found.push({ s: s, score: score });
    });
    found.sort(function (a, b) { return b.score - a.score; });
    return found.slice(0, 12);
  }
  function show() {
    var found = search(input.value);
    results.innerHTML = "";
    if (input.value.trim() === "") { results.hidden = true; return; }
    if (found.length === 0) {
      var none = document.createElement("p");
      none.textContent = "Nothing found for \u201c" + input.value + "\u201d.";
      results.appendChild(none);
    }
    var list = document.createElement("ol");
    found.forEach(function (f) {
      var li = document.createElement("li");
      var a = document.createElement("a");
      a.href = base + f.s.p + (f.s.a ? "#" + f.s.a : "");
      var where = document.createElement("span");
      where.className = "where";
      where.textContent = f.s.c;
      a.appendChild(where);
      a.appendChild(document.createTextNode(" " + f.s.t));
      li.appendChild(a);
      var snippet = document.createElement("p");
      snippet.textContent = f.s.x;
      li.appendChild(snippet);
      list.appendChild(li);
    });
    results.appendChild(list);
    results.hidden = false;
  }
  input.addEventListener("focus", function () { load(function () {}); });
  input.addEventListener("input", function () { load(show); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Escape") { input.value = ""; results.hidden = true; }
    if (e.key === "Enter") {
      var first = results.querySelector("a");
      if (first) window.location.href = first.href;
    }
  });
})();
