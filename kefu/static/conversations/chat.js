/*
 * Kefu web chat: the client of the chat page (/chat/<code>/), usually inside the widget's iframe.
 *
 * - The visitor's token comes from POST /chat/<code>/session (after the pre-chat form when the
 *   channel has one) and is kept in localStorage per channel code, so a reload goes on with the
 *   same chat. A kept token is checked with the same endpoint before use.
 * - The socket: ws(s)://<host>/ws/chat/<code>/?visitor=<token>&last_id=<n> (protocol at the top
 *   of kefu/conversations/consumers.py). A page load asks from 0 (the server sends the recent
 *   history); a reconnect asks from the last id seen, so nothing is lost or shown twice.
 * - Messages are rendered once per id. What the visitor sends waits in a pending list (kept in
 *   localStorage) until the server acknowledges it, and is sent again after a reconnect with
 *   the same client_id (the server stores it once).
 * - Reconnects back off 1 s, 2 s, 5 s, then every 10 s.
 * - The header says who answers: waiting for an agent, or the agent's name ("assignment"
 *   frames, at connect and whenever it changes).
 * - Times are shown in the department's time zone (config.time_zone), as the agents see them,
 *   whatever the visitor's browser is set to.
 * - Every word shown comes translated from the page (#chat-config labels); none are written here.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("chat-config").textContent);
  var L = config.labels || {};
  var BACKOFF_MS = [1000, 2000, 5000, 10000];
  var TYPING_SEND_EVERY_MS = 3000;
  var TYPING_SHOW_MS = 4000;

  var $ = function (id) { return document.getElementById(id); };
  var els = {
    status: $("chat-status"),
    agent: $("chat-agent"),
    prechat: $("prechat"),
    prechatForm: $("prechat-form"),
    main: $("chat-main"),
    messages: $("chat-messages"),
    typing: $("chat-typing"),
    rating: $("chat-rating"),
    ratingComment: $("rating-comment"),
    ratingSubmit: $("rating-submit"),
    rated: $("chat-rated"),
    error: $("chat-error"),
    form: $("chat-form"),
    input: $("chat-input"),
    send: $("chat-send"),
  };

  // ---- Storage per channel ------------------------------------------------------------------
  // localStorage when the browser allows it. In a third-party iframe whose storage is blocked,
  // the widget on the company's page keeps it: it passes the saved values in the #fragment
  // (kefu=<json>&origin=<its origin>) and is sent every change by postMessage.
  function storageWorks() {
    try {
      var probe = "kefu-chat:probe";
      window.localStorage.setItem(probe, "1");
      window.localStorage.removeItem(probe);
      return true;
    } catch (e) {
      return false;
    }
  }

  function fragment() {
    var found = {};
    var parts = window.location.hash.replace(/^#/, "").split("&");
    for (var i = 0; i < parts.length; i++) {
      var at = parts[i].indexOf("=");
      if (at > 0) {
        try {
          found[parts[i].slice(0, at)] = decodeURIComponent(parts[i].slice(at + 1));
        } catch (e) { /* a mangled fragment is ignored */ }
      }
    }
    return found;
  }

  var local = storageWorks();
  var embedded = window.parent !== window;
  var handedOver = fragment();
  var memory = {};
  if (!local && handedOver.kefu) {
    try {
      var saved = JSON.parse(handedOver.kefu);
      for (var name in saved) {
        if (typeof saved[name] === "string") memory[name] = saved[name];
      }
    } catch (e) { /* nothing saved */ }
  }
  var parentOrigin = handedOver.origin || "*";

  var store = {
    key: function (name) { return "kefu-chat:" + config.code + ":" + name; },
    get: function (name) {
      if (local) return window.localStorage.getItem(this.key(name));
      return Object.prototype.hasOwnProperty.call(memory, name) ? memory[name] : null;
    },
    set: function (name, value) {
      if (local) {
        window.localStorage.setItem(this.key(name), value);
        return;
      }
      memory[name] = value;
      this.handOver(name, value);
    },
    remove: function (name) {
      if (local) {
        window.localStorage.removeItem(this.key(name));
        return;
      }
      delete memory[name];
      this.handOver(name, null);
    },
    handOver: function (name, value) {
      if (!embedded) return;
      try {
        window.parent.postMessage({ kefu: "store", key: name, value: value }, parentOrigin);
      } catch (e) { /* the page around us went away */ }
    },
  };

  function loadPending() {
    try {
      var list = JSON.parse(store.get("pending") || "[]");
      return Array.isArray(list) ? list : [];
    } catch (e) {
      return [];
    }
  }

  // ---- State --------------------------------------------------------------------------------
  var token = store.get("visitor") || "";
  var lastId = parseInt(store.get("last_id") || "0", 10) || 0;
  var pending = loadPending(); // [{client_id, body}], oldest first
  var socket = null;
  var opened = false; // the current socket reached "open"
  var loadedOnce = false; // the history of this page load has been asked for
  var attempt = 0;
  var reconnectTimer = null;
  var conversationId = null;
  var lastTypingSent = 0;
  var typingTimer = null;
  var rating = 0;
  var shown = {}; // message id -> element

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    if (window.crypto && window.crypto.getRandomValues) {
      var bytes = new Uint8Array(16);
      window.crypto.getRandomValues(bytes);
      return Array.prototype.map.call(bytes, function (b) {
        return ("0" + b.toString(16)).slice(-2);
      }).join("");
    }
    return Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 12);
  }

  function savePending() { store.set("pending", JSON.stringify(pending)); }

  function setLastId(id) {
    if (id && id > lastId) {
      lastId = id;
      store.set("last_id", String(lastId));
    }
  }

  function setStatus(text) { els.status.textContent = text || ""; }

  function showError(text) {
    els.error.textContent = text || "";
    els.error.hidden = !text;
  }

  // ---- Rendering ----------------------------------------------------------------------------
  function nearBottom() {
    var box = els.messages;
    return box.scrollHeight - box.scrollTop - box.clientHeight < 80;
  }

  function scrollDown(force) {
    if (force || nearBottom()) els.messages.scrollTop = els.messages.scrollHeight;
  }

  var clock; // Intl formatter of HH:MM in the department's zone; null when unavailable

  function clockFormat() {
    if (clock === undefined) {
      var options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
      if (config.time_zone) options.timeZone = config.time_zone;
      try {
        clock = new Intl.DateTimeFormat("en-GB", options);
        if (!clock.formatToParts) clock = null;
      } catch (e) {
        clock = null; // an unknown zone or no Intl: the browser's clock below
      }
    }
    return clock;
  }

  function timeOf(iso) {
    var date = iso ? new Date(iso) : new Date();
    if (isNaN(date.getTime())) return "";
    var format = clockFormat();
    if (format) {
      var hour = "";
      var minute = "";
      var parts = format.formatToParts(date);
      for (var i = 0; i < parts.length; i++) {
        if (parts[i].type === "hour") hour = parts[i].value;
        if (parts[i].type === "minute") minute = parts[i].value;
      }
      if (hour && minute) return hour + ":" + minute;
    }
    return ("0" + date.getHours()).slice(-2) + ":" + ("0" + date.getMinutes()).slice(-2);
  }

  /* Who answers, under the chat's title: "waiting for an agent" or "<agent> is here to help". */
  function showAssignment(frame) {
    var text = "";
    if (frame.status === "queued") {
      text = L.waiting || "";
    } else if (frame.status === "open" && frame.agent) {
      text = (L.serving || "").replace("%(agent)s", frame.agent);
    }
    els.agent.textContent = text;
    els.agent.hidden = !text;
    els.agent.setAttribute("data-status", frame.status || "");
  }

  function buildMessage(direction, body) {
    var el = document.createElement("div");
    el.className = "chat-message " + direction;
    var bubble = document.createElement("div");
    bubble.className = "chat-bubble";
    bubble.textContent = body;
    var meta = document.createElement("div");
    meta.className = "chat-meta";
    el.appendChild(bubble);
    el.appendChild(meta);
    return el;
  }

  function fillMessage(el, m) {
    el.className = "chat-message " + m.direction;
    if (m.is_automatic) el.classList.add("automatic");
    if (m.kind === "event") el.classList.add("event");
    el.setAttribute("data-id", String(m.id));
    el.removeAttribute("data-client-id");
    var bubble = el.querySelector(".chat-bubble");
    bubble.textContent = m.body || "";
    var link = m.attachment || m.media_url;
    if (link && (/^https?:\/\//.test(link) || /^\/(?!\/)/.test(link))) {
      if (m.body) bubble.appendChild(document.createElement("br"));
      var a = document.createElement("a");
      a.href = link;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.textContent = m.attachment_name || L.attachment || link;
      bubble.appendChild(a);
    }
    var who = "";
    if (m.direction === "out" && m.kind !== "event") {
      who = m.is_automatic ? (L.automatic || "") : (m.author || L.agent || "");
    }
    el.querySelector(".chat-meta").textContent = (who ? who + " · " : "") + timeOf(m.created_at);
  }

  /* Put a message element in id order, before the pending ones. */
  function place(el, id) {
    var children = els.messages.children;
    for (var i = 0; i < children.length; i++) {
      var child = children[i];
      if (child === el) continue;
      var otherId = parseInt(child.getAttribute("data-id") || "0", 10);
      if (!otherId || otherId > id) {
        els.messages.insertBefore(el, child);
        return;
      }
    }
    els.messages.appendChild(el);
  }

  function pendingElement(clientId) {
    return els.messages.querySelector('.chat-message[data-client-id="' + cssEscape(clientId) + '"]');
  }

  function cssEscape(value) {
    if (window.CSS && window.CSS.escape) return window.CSS.escape(value);
    return String(value).replace(/["\\]/g, "\\$&");
  }

  function renderMessage(m) {
    if (!m || !m.id || m.direction === "note") return;
    setLastId(m.id);
    if (shown[m.id]) return; // already on screen: the same message from another group or a resume
    var el = null;
    if (m.direction === "in") {
      // Our own message, echoed before its ack came: take over its pending bubble.
      var candidates = els.messages.querySelectorAll(".chat-message.pending[data-client-id]");
      for (var i = 0; i < candidates.length; i++) {
        if (candidates[i].querySelector(".chat-bubble").textContent === m.body) {
          el = candidates[i];
          break;
        }
      }
    }
    var follow = nearBottom();
    if (!el) el = buildMessage(m.direction, m.body);
    fillMessage(el, m);
    shown[m.id] = el;
    place(el, m.id);
    if (m.direction === "out" && m.kind !== "event") hideTyping();
    scrollDown(follow || m.direction === "in");
  }

  function renderPending(item) {
    var el = buildMessage("in", item.body);
    el.classList.add("pending");
    el.setAttribute("data-client-id", item.client_id);
    el.querySelector(".chat-meta").textContent = L.sending || "";
    els.messages.appendChild(el);
    scrollDown(true);
  }

  // ---- Sending ------------------------------------------------------------------------------
  function isOpen() { return socket && socket.readyState === WebSocket.OPEN; }

  function transmit(frame) {
    if (!isOpen()) return false;
    socket.send(JSON.stringify(frame));
    return true;
  }

  function sendMessage(body) {
    body = (body || "").replace(/\s+$/, "");
    if (!body.trim()) return;
    var item = { client_id: newClientId(), body: body.slice(0, config.max_length || 5000) };
    pending.push(item);
    savePending();
    renderPending(item);
    transmit({ type: "message", body: item.body, client_id: item.client_id });
    lastTypingSent = 0;
  }

  function onAck(frame) {
    var index = -1;
    for (var i = 0; i < pending.length; i++) {
      if (pending[i].client_id === frame.client_id) { index = i; break; }
    }
    if (index >= 0) {
      pending.splice(index, 1);
      savePending();
    }
    if (frame.conversation) conversationId = frame.conversation;
    var el = pendingElement(frame.client_id);
    if (!el) return;
    if (!frame.id) {
      el.parentNode.removeChild(el);
      return;
    }
    setLastId(frame.id);
    if (shown[frame.id] && shown[frame.id] !== el) {
      el.parentNode.removeChild(el); // the echo already showed it
      return;
    }
    el.classList.remove("pending");
    el.removeAttribute("data-client-id");
    el.setAttribute("data-id", String(frame.id));
    el.querySelector(".chat-meta").textContent = timeOf();
    shown[frame.id] = el;
    place(el, frame.id);
  }

  /* The server answers frames in order, so an error about a message concerns the oldest one
     still waiting for its ack: it is marked as not sent and not sent again. */
  function failOldestPending() {
    var item = pending.shift();
    if (!item) return;
    savePending();
    var el = pendingElement(item.client_id);
    if (el) {
      el.classList.remove("pending");
      el.classList.add("failed");
      el.removeAttribute("data-client-id");
      el.querySelector(".chat-meta").textContent = L.failed || "";
    }
  }

  // ---- Typing -------------------------------------------------------------------------------
  function hideTyping() {
    els.typing.hidden = true;
    if (typingTimer) { clearTimeout(typingTimer); typingTimer = null; }
  }

  function showTyping() {
    els.typing.hidden = false;
    if (typingTimer) clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, TYPING_SHOW_MS);
  }

  function maybeSendTyping() {
    var now = Date.now();
    if (!conversationId || now - lastTypingSent < TYPING_SEND_EVERY_MS) return;
    if (transmit({ type: "typing" })) lastTypingSent = now;
  }

  // ---- Rating -------------------------------------------------------------------------------
  function showRating() {
    if (!config.survey) return;
    rating = 0;
    paintStars();
    els.ratingComment.value = "";
    els.rated.hidden = true;
    els.rating.hidden = false;
    scrollDown(true);
  }

  function paintStars() {
    var stars = els.rating.querySelectorAll(".rating-star");
    for (var i = 0; i < stars.length; i++) {
      var value = parseInt(stars[i].getAttribute("data-value"), 10);
      stars[i].classList.toggle("selected", value <= rating);
      stars[i].setAttribute("aria-pressed", value === rating ? "true" : "false");
    }
    els.ratingSubmit.disabled = rating < 1;
  }

  function ratingError(text) {
    var slot = els.rating.querySelector('[data-error-for="rating"]');
    slot.textContent = text || "";
    slot.hidden = !text;
  }

  function submitRating() {
    if (rating < 1) {
      ratingError(L.rate_first);
      return;
    }
    ratingError("");
    if (transmit({ type: "rate", rating: rating, comment: els.ratingComment.value.trim() })) {
      els.ratingSubmit.disabled = true;
    } else {
      ratingError(L.offline);
    }
  }

  function onRated() {
    els.rating.hidden = true;
    els.rated.hidden = false;
    scrollDown(true);
  }

  // ---- Frames from the server ---------------------------------------------------------------
  function firstFieldError(frame) {
    var errors = frame.errors || {};
    for (var field in errors) {
      if (Object.prototype.hasOwnProperty.call(errors, field) && errors[field].length) {
        return { field: field, message: errors[field][0] };
      }
    }
    return null;
  }

  function onError(frame) {
    var fieldError = firstFieldError(frame);
    var field = fieldError ? fieldError.field : "";
    if (field === "rating" || field === "comment" || frame.code === "already_rated") {
      ratingError(fieldError ? fieldError.message : frame.message);
      els.ratingSubmit.disabled = rating < 1;
      if (frame.code === "already_rated") onRated();
      return;
    }
    if (field === "body" || field === "sender") failOldestPending();
    showError(fieldError ? fieldError.message : (frame.message || L.error));
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "hello":
        if (frame.conversation) conversationId = frame.conversation;
        break;
      case "message":
        renderMessage(frame.message);
        break;
      case "ack":
        onAck(frame);
        break;
      case "typing":
        if (frame.who === "agent") showTyping();
        break;
      case "assignment":
        showAssignment(frame);
        break;
      case "closed":
        hideTyping();
        showAssignment({ status: "closed" });
        if (config.survey) showRating(); else setStatus(L.ended);
        break;
      case "rated":
        onRated();
        break;
      case "error":
        onError(frame);
        break;
      default:
        break; // delivery states and the like: nothing to show the visitor
    }
  }

  // ---- The socket ---------------------------------------------------------------------------
  function socketUrl() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var from = loadedOnce ? lastId : 0;
    return scheme + window.location.host + config.ws_path +
      "?visitor=" + encodeURIComponent(token) + "&last_id=" + from;
  }

  function connect() {
    if (!token) return;
    if (reconnectTimer) { clearTimeout(reconnectTimer); reconnectTimer = null; }
    if (socket && (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)) {
      return;
    }
    opened = false;
    setStatus(attempt ? L.reconnecting : L.connecting);
    var ws;
    try {
      ws = new WebSocket(socketUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    socket = ws;
    ws.onopen = function () {
      if (socket !== ws) return;
      opened = true;
      loadedOnce = true;
      attempt = 0;
      setStatus(L.online);
      showError("");
      // Messages not acknowledged before: again, same client_id (the server stores each once).
      for (var i = 0; i < pending.length; i++) {
        transmit({ type: "message", body: pending[i].body, client_id: pending[i].client_id });
      }
    };
    ws.onmessage = function (event) {
      if (socket !== ws) return;
      var frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      onFrame(frame);
    };
    ws.onclose = function (event) {
      if (socket !== ws) return;
      socket = null;
      if (event.code === 4403 || event.code === 4401) {
        restart(); // the token is refused: get another one
        return;
      }
      if (!opened) {
        // Refused at the handshake, or the server is away: ask whether the token still holds.
        checkToken().then(function (valid) {
          if (valid) scheduleReconnect(); else restart();
        }, scheduleReconnect);
        return;
      }
      scheduleReconnect();
    };
    ws.onerror = function () { /* onclose follows and decides */ };
  }

  function scheduleReconnect() {
    if (reconnectTimer) return;
    var delay = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
    attempt += 1;
    setStatus(L.reconnecting);
    reconnectTimer = setTimeout(function () {
      reconnectTimer = null;
      connect();
    }, delay);
  }

  function reconnectNow() {
    if (!token || isOpen()) return;
    if (reconnectTimer) { clearTimeout(reconnectTimer); reconnectTimer = null; }
    connect();
  }

  // ---- The visitor's token ------------------------------------------------------------------
  function postSession(fields) {
    return fetch(config.session_url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify(fields),
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          var error = new Error(body.message || response.statusText);
          error.status = response.status;
          error.body = body;
          throw error;
        }
        return body;
      });
    });
  }

  /* Resolves true while the kept token is valid, false when it is not; rejects when the server
     cannot be asked (offline). */
  function checkToken() {
    return postSession({ visitor: token }).then(function (body) {
      return Boolean(body.resumed);
    }, function (error) {
      if (error.status === 404) return false;
      throw error;
    });
  }

  function useToken(value) {
    if (value !== token) {
      // Another visitor as far as the server knows: start from a clean slate.
      lastId = 0;
      store.remove("last_id");
      loadedOnce = false;
    }
    token = value;
    store.set("visitor", token);
    showChat();
    connect();
  }

  function forgetToken() {
    token = "";
    store.remove("visitor");
    store.remove("last_id");
    lastId = 0;
    loadedOnce = false;
    conversationId = null;
    showAssignment({});
  }

  function restart() {
    forgetToken();
    begin();
  }

  function begin() {
    if (config.prechat) {
      showPrechat();
      return;
    }
    setStatus(L.connecting);
    postSession({}).then(function (body) {
      useToken(body.visitor);
    }, function () {
      setStatus("");
      showChat();
      showError(L.start_failed);
      setTimeout(begin, BACKOFF_MS[BACKOFF_MS.length - 1]);
    });
  }

  function start() {
    if (!token) {
      begin();
      return;
    }
    showChat();
    checkToken().then(function (valid) {
      if (valid) connect(); else restart();
    }, function () {
      connect(); // the server cannot be asked now: the socket retries with backoff
    });
  }

  // ---- Screens ------------------------------------------------------------------------------
  function showChat() {
    els.prechat.hidden = true;
    els.main.hidden = false;
  }

  function showPrechat() {
    setStatus("");
    els.main.hidden = true;
    els.prechat.hidden = false;
    var first = els.prechatForm.querySelector("input, select");
    if (first) first.focus();
  }

  function prechatErrors(errors, message) {
    var slots = els.prechatForm.querySelectorAll("[data-error-for]");
    for (var i = 0; i < slots.length; i++) {
      var field = slots[i].getAttribute("data-error-for");
      var text = errors && errors[field] ? errors[field].join(" ") : "";
      if (field === "__all__" && !text && message) text = message;
      slots[i].textContent = text;
      slots[i].hidden = !text;
      var input = els.prechatForm.elements[field];
      if (input && input.setAttribute) input.setAttribute("aria-invalid", text ? "true" : "false");
    }
  }

  function onPrechatSubmit(event) {
    event.preventDefault();
    var form = els.prechatForm;
    var button = form.querySelector("button[type=submit]");
    var fields = {
      name: form.elements.name ? form.elements.name.value.trim() : "",
      phone: form.elements.phone ? form.elements.phone.value.trim() : "",
      topic: form.elements.topic ? form.elements.topic.value : "",
    };
    button.disabled = true;
    prechatErrors({}, "");
    postSession(fields).then(function (body) {
      button.disabled = false;
      useToken(body.visitor);
    }, function (error) {
      button.disabled = false;
      var body = error.body || {};
      var errors = body.errors || {};
      var named = Object.keys(errors).some(function (field) {
        return form.querySelector('[data-error-for="' + field + '"]');
      });
      prechatErrors(errors, named ? "" : (body.message || L.start_failed));
    });
  }

  // ---- Composer -----------------------------------------------------------------------------
  function autoGrow() {
    els.input.style.height = "auto";
    els.input.style.height = Math.min(els.input.scrollHeight, 128) + "px";
  }

  function submitComposer(event) {
    if (event) event.preventDefault();
    var body = els.input.value;
    if (!body.trim()) return;
    sendMessage(body);
    els.input.value = "";
    autoGrow();
    els.input.focus();
  }

  els.form.addEventListener("submit", submitComposer);
  els.input.addEventListener("keydown", function (event) {
    // Enter sends, Shift+Enter starts a new line; Enter that ends an IME composition (pinyin)
    // only picks the characters.
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
      submitComposer(event);
    }
  });
  els.input.addEventListener("input", function () {
    autoGrow();
    if (els.input.value.trim()) maybeSendTyping();
  });

  els.rating.addEventListener("click", function (event) {
    var star = event.target.closest ? event.target.closest(".rating-star") : null;
    if (!star) return;
    rating = parseInt(star.getAttribute("data-value"), 10) || 0;
    ratingError("");
    paintStars();
  });
  els.ratingSubmit.addEventListener("click", submitRating);
  els.prechatForm.addEventListener("submit", onPrechatSubmit);

  window.addEventListener("online", reconnectNow);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reconnectNow();
  });

  // What was waiting for an ack when the page was left shows as "sending" and goes out once
  // the socket is open.
  for (var p = 0; p < pending.length; p++) renderPending(pending[p]);

  start();
})();
