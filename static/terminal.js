// The terminal on a container's page: xterm.js joined to the container's
// login shell through the API's WebSocket (/v1/containers/:id/console).
// Binary frames carry the terminal's bytes; text frames carry
// {"type":"resize","cols":…,"rows":…}.
(function () {
  "use strict";

  // xterm.js writes computed CSS (colours, cell sizes) into <style>
  // elements, which the page's Content-Security-Policy refuses. Those
  // elements are replaced by inert ones whose CSS goes to a constructed
  // style sheet: the policy does not govern those, and the page keeps it.
  var createElement = Document.prototype.createElement;
  Document.prototype.createElement = function (tag, options) {
    if (String(tag).toLowerCase() !== "style" || !document.adoptedStyleSheets) {
      return createElement.call(this, tag, options);
    }
    var holder = createElement.call(this, "template");
    var sheet = new CSSStyleSheet();
    var css = "";
    document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
    var text = {
      get: function () { return css; },
      set: function (value) { css = String(value); sheet.replaceSync(css); },
      configurable: true
    };
    Object.defineProperty(holder, "textContent", text);
    Object.defineProperty(holder, "innerText", text);
    Object.defineProperty(holder, "sheet", { get: function () { return sheet; } });
    var remove = holder.remove;
    holder.remove = function () {
      document.adoptedStyleSheets = document.adoptedStyleSheets.filter(function (s) { return s !== sheet; });
      remove.call(holder);
    };
    return holder;
  };

  var section = document.querySelector("[data-terminal]");
  if (!section || typeof Terminal === "undefined") { return; }
  var openButton = section.querySelector("[data-terminal-open]");
  var closeButton = section.querySelector("[data-terminal-close]");
  var screen = section.querySelector("[data-terminal-screen]");
  var state = section.querySelector("[data-terminal-state]");
  var api = document.body.getAttribute("data-api") || "/v1";
  var id = section.getAttribute("data-terminal");
  var socket = null;
  var term = null;

  function say(text) { state.textContent = text; }

  function close() {
    if (socket) { socket.close(); socket = null; }
    if (term) { term.dispose(); term = null; }
    screen.hidden = true;
    closeButton.hidden = true;
    openButton.hidden = false;
    window.removeEventListener("resize", fitAndTell);
  }

  var fit = null;
  function fitAndTell() {
    if (!term || !fit) { return; }
    fit.fit();
  }

  function open() {
    screen.hidden = false;
    openButton.hidden = true;
    closeButton.hidden = false;
    term = new Terminal({ cursorBlink: true, fontSize: 14, scrollback: 2000 });
    fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(screen);
    fit.fit();
    // xterm.js stops drawing while it is out of view: bring it in.
    if (screen.scrollIntoView) { screen.scrollIntoView({ block: "nearest" }); }
    var scheme = location.protocol === "https:" ? "wss:" : "ws:";
    var url = scheme + "//" + location.host + api + "/containers/" + encodeURIComponent(id) +
      "/console?cols=" + term.cols + "&rows=" + term.rows;
    var ws = new WebSocket(url);
    ws.binaryType = "arraybuffer";
    socket = ws;
    var encoder = new TextEncoder();
    say("Connecting…");
    // What is typed while connecting is sent once connected, not lost.
    var typed = [];
    ws.onopen = function () {
      say("Connected: a login shell in the container. Closing this page ends it.");
      typed.forEach(function (bytes) { ws.send(bytes); });
      typed = [];
      term.focus();
    };
    ws.onmessage = function (event) {
      if (term && event.data instanceof ArrayBuffer) { term.write(new Uint8Array(event.data)); }
    };
    ws.onclose = function (event) {
      if (socket !== ws) { return; }
      socket = null;
      say(event.code === 1000 ? "The shell ended." :
        "The terminal could not be opened or was cut off. The container must be running, " +
        "with fewer than 4 terminals open.");
    };
    term.onData(function (data) {
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(encoder.encode(data));
      } else if (ws.readyState === WebSocket.CONNECTING) {
        typed.push(encoder.encode(data));
      }
    });
    term.onResize(function (size) {
      if (ws.readyState === WebSocket.OPEN) {
        ws.send(JSON.stringify({ type: "resize", cols: size.cols, rows: size.rows }));
      }
    });
    window.addEventListener("resize", fitAndTell);
  }

  openButton.hidden = false;
  openButton.addEventListener("click", open);
  closeButton.addEventListener("click", function () { close(); say("Closed."); });
  window.addEventListener("pagehide", function () { if (socket) { socket.close(); } });
})();
