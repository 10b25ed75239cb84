/*
 * Kefu inbox: live updates over the agent WebSocket (protocol at the top of
 * kefu/conversations/consumers.py). Plain ES, no build step; every string shown comes from the
 * page (#inbox-config, json_script), none is written here.
 *
 * - On a conversation page: {"type":"watch","conversation":id,"last_id":n} after every
 *   (re)connect, so nothing sent while the socket was down is lost; messages are kept once per
 *   id (a reply arrives by HTTP and by the socket) and in id order.
 * - Delivery states, the customer's typing, and our own typing (at most one event per 3 s).
 * - Other conversations: the list is refreshed (HTMX) and the title counts what came in while
 *   the window was not looked at. No sound.
 * - The open conversation's header (status, agent) is fetched again when it is assigned,
 *   transferred or closed, so it never says "no agent yet" after someone took it.
 * - Times are shown in the department's time zone (config.time_zone, as on the server-rendered
 *   messages), never the browser's.
 * - Reconnects with exponential backoff; while the socket is down the list polls every 10 s
 *   (the list's own "every 10s" requests are called off while the socket is live).
 */
(function () {
  "use strict";

  var configElement = document.getElementById("inbox-config");
  if (!configElement) {
    return;
  }
  var config = JSON.parse(configElement.textContent);
  var strings = config.strings || {};
  var conversationId = config.conversation || null;
  var baseTitle = document.title;
  var TYPING_EVERY_MS = 3000;
  var TYPING_SHOWN_MS = 6000;
  var REFRESH_EVERY_MS = 1000;
  var MAX_BACKOFF_MS = 30000;

  var socket = null;
  var attempts = 0;
  var stopped = false;
  var everConnected = false;
  var lastTypingSent = 0;
  var typingTimer = null;
  var refreshTimer = null;
  var suggestTimer = null;
  var lastQuery = null;
  var unseen = 0;
  var clockOffset = 0; // server clock minus this browser's clock, in ms
  var keepScroll = null;

  window.kefuInboxLive = false;

  // The list polls every 10 s only while the socket is down; when it is live, events refresh
  // the list ("inbox-refresh"). Done here, not with an hx-trigger filter: htmx would eval that,
  // and the page's Content-Security-Policy allows no eval.
  document.body.addEventListener("htmx:confirm", function (event) {
    var trigger = event.detail && event.detail.triggeringEvent;
    var list = event.detail && event.detail.elt;
    if (window.kefuInboxLive && list && list.id === "inbox-list" &&
        !(trigger && trigger.type === "inbox-refresh")) {
      event.preventDefault();
    }
  });

  // --- Small helpers -------------------------------------------------------------------------
  function one(selector, root) {
    return (root || document).querySelector(selector);
  }

  function all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }

  function format(template, values) {
    return String(template || "").replace(/%\((\w+)\)s/g, function (match, key) {
      return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : match;
    });
  }

  function make(tag, className, text) {
    var node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  // --- Connection state ----------------------------------------------------------------------
  function setLive(state) {
    window.kefuInboxLive = state === "live";
    var badge = one("#live-status");
    if (badge) {
      badge.dataset.state = state;
      badge.textContent = strings[state] || "";
      badge.title = state === "live" ? "" : strings.offline || "";
    }
  }

  function send(payload) {
    if (socket && socket.readyState === WebSocket.OPEN) {
      socket.send(JSON.stringify(payload));
      return true;
    }
    return false;
  }

  function watch() {
    if (conversationId) {
      send({ type: "watch", conversation: conversationId, last_id: lastMessageId() });
    }
  }

  function reconnectLater() {
    if (stopped) {
      return;
    }
    var delay = Math.min(MAX_BACKOFF_MS, 1000 * Math.pow(2, attempts));
    delay = delay / 2 + Math.random() * (delay / 2);
    attempts += 1;
    setLive("reconnecting");
    window.setTimeout(connect, delay);
  }

  function connect() {
    if (stopped) {
      return;
    }
    if (!("WebSocket" in window)) {
      setLive("offline");
      return;
    }
    setLive(everConnected ? "reconnecting" : "connecting");
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    try {
      socket = new WebSocket(scheme + window.location.host + config.ws_path);
    } catch (error) {
      socket = null;
      reconnectLater();
      return;
    }
    socket.onopen = function () {
      var wasConnected = everConnected;
      attempts = 0;
      everConnected = true;
      setLive("live");
      watch();
      if (wasConnected) {
        refreshList(); // what changed while we were away
      }
    };
    socket.onmessage = function (event) {
      var data;
      try {
        data = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      handle(data);
    };
    socket.onclose = function (event) {
      socket = null;
      if (stopped) {
        return;
      }
      if (event.code === 4401 || event.code === 4403) {
        // Logged out or no longer allowed: polling keeps the list, the next page asks to log in.
        setLive("offline");
        return;
      }
      reconnectLater();
    };
  }

  // --- Events from the server ----------------------------------------------------------------
  function conversationOf(data) {
    if (data.message && data.message.conversation) {
      return data.message.conversation;
    }
    if (data.conversation && typeof data.conversation === "object") {
      return data.conversation.id;
    }
    return data.conversation || null;
  }

  function handle(data) {
    var about = conversationOf(data);
    var here = conversationId && about === conversationId;
    switch (data.type) {
      case "message":
        if (here) {
          insertMessage(data.message);
          if (data.message.direction === "in") {
            showTyping(false);
          }
        } else {
          noteUnseen();
        }
        refreshList();
        break;
      case "delivery":
        updateDelivery(data.message);
        break;
      case "typing":
        if (here && data.who === "customer") {
          showTyping(true);
        }
        break;
      case "new_conversation":
        if (concernsList(data.conversation)) {
          noteUnseen();
          refreshList();
        }
        break;
      case "wait_alert":
        highlight(about);
        if (concernsList(data.conversation)) {
          refreshList();
        }
        break;
      case "rated":
        if (here) {
          refreshRecord();
        }
        if (concernsList(data.conversation)) {
          refreshList();
        }
        break;
      case "assigned":
        if (here) {
          refreshHead();
          if (data.conversation.assignee !== config.user && one("#reply-form")) {
            showChanged(); // someone else answers it now
          }
        }
        if (concernsList(data.conversation)) {
          refreshList();
        }
        break;
      case "closed":
      case "conversation":
      case "unassigned":
        if (here) {
          refreshHead();
          if (data.type !== "conversation") {
            showChanged();
          }
        }
        if (data.type === "unassigned" || concernsList(data.conversation)) {
          refreshList();
        }
        break;
      case "status":
        showStatus(data.status);
        break;
      default:
        break;
    }
  }

  // --- Messages ------------------------------------------------------------------------------
  function messageBox() {
    return one("#messages");
  }

  function lastMessageId() {
    var max = 0;
    all("#messages .message").forEach(function (node) {
      var id = Number(node.dataset.id) || 0;
      if (id > max) {
        max = id;
      }
    });
    return max;
  }

  function nearBottom(box) {
    return box.scrollHeight - box.scrollTop - box.clientHeight < 120;
  }

  function scrollToBottom() {
    var box = messageBox();
    if (box) {
      box.scrollTop = box.scrollHeight;
    }
  }

  function appendLines(node, text) {
    String(text)
      .split("\n")
      .forEach(function (line, index) {
        if (index) {
          node.appendChild(document.createElement("br"));
        }
        node.appendChild(document.createTextNode(line));
      });
  }

  // --- Times in the department's time zone ------------------------------------------------
  var formats = {};

  function formatter(withDate) {
    var key = withDate ? "full" : "time";
    if (!(key in formats)) {
      var options = { hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
      if (withDate) {
        options.year = "numeric";
        options.month = "2-digit";
        options.day = "2-digit";
        options.second = "2-digit";
      }
      if (config.time_zone) {
        options.timeZone = config.time_zone;
      }
      try {
        formats[key] = new Intl.DateTimeFormat("en-GB", options);
      } catch (error) {
        formats[key] = null; // an unknown zone or no Intl: the browser's clock below
      }
    }
    return formats[key];
  }

  function clockParts(moment, withDate) {
    var found = {};
    var format = formatter(withDate);
    if (format && format.formatToParts) {
      format.formatToParts(moment).forEach(function (part) {
        found[part.type] = part.value;
      });
      return found;
    }
    return {
      year: String(moment.getFullYear()),
      month: pad(moment.getMonth() + 1),
      day: pad(moment.getDate()),
      hour: pad(moment.getHours()),
      minute: pad(moment.getMinutes()),
      second: pad(moment.getSeconds()),
    };
  }

  function timeOf(iso) {
    // 23:12, as the server writes it ({{ created_at|date:"H:i" }} in the department's zone).
    var moment = new Date(iso);
    if (isNaN(moment.getTime())) {
      return "";
    }
    var p = clockParts(moment, false);
    return p.hour + ":" + p.minute;
  }

  function stampOf(iso) {
    // 2026-11-30 23:12:05, the title of a message's time.
    var moment = new Date(iso);
    if (isNaN(moment.getTime())) {
      return "";
    }
    var p = clockParts(moment, true);
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + ":" + p.second;
  }

  function buildMessage(m) {
    var classes = "message message-" + m.direction;
    if (m.is_automatic) {
      classes += " message-auto";
    }
    if (m.kind === "event") {
      classes += " message-event";
    }
    var node = make("div", classes);
    node.id = "message-" + m.id;
    node.dataset.id = String(m.id);
    node.dataset.direction = m.direction;

    var meta = make("div", "message-meta");
    var author = m.author || "";
    if (m.direction === "in") {
      author = config.customer_name || strings.customer;
    } else if (m.is_automatic) {
      author = strings.automatic;
    }
    meta.appendChild(make("span", "message-author", author));
    if (m.direction === "note") {
      meta.appendChild(make("span", "message-tag", strings.note));
    }
    var time = make("time", null, timeOf(m.created_at));
    time.dateTime = m.created_at;
    time.title = stampOf(m.created_at);
    meta.appendChild(time);
    node.appendChild(meta);

    if (m.body) {
      var body = make("div", "message-body");
      appendLines(body, m.body);
      node.appendChild(body);
    }
    if (m.attachment && config.attachment_url) {
      var url = config.attachment_url.replace("999999999", String(m.id));
      var name = m.attachment_name || "";
      if (m.kind === "image" || /\.(png|jpe?g|gif|webp)$/i.test(name)) {
        var imageLink = make("a", "message-image");
        imageLink.href = url;
        imageLink.target = "_blank";
        imageLink.rel = "noopener";
        var image = make("img");
        image.src = url;
        image.alt = name;
        image.loading = "lazy";
        imageLink.appendChild(image);
        node.appendChild(imageLink);
      } else {
        var fileLink = make("a", "message-file", strings.attachment + ": " + (name || url));
        fileLink.href = url;
        node.appendChild(fileLink);
      }
    } else if (m.media_url && /^https?:\/\//i.test(m.media_url)) {
      var mediaLink = make("a", m.kind === "image" ? "message-image" : "message-file");
      mediaLink.href = m.media_url;
      mediaLink.target = "_blank";
      mediaLink.rel = "noopener noreferrer";
      if (m.kind === "image") {
        var media = make("img");
        media.src = m.media_url;
        media.alt = "";
        media.loading = "lazy";
        media.referrerPolicy = "no-referrer";
        mediaLink.appendChild(media);
      } else {
        mediaLink.textContent = strings.attachment;
      }
      node.appendChild(mediaLink);
    }
    if (m.direction === "out") {
      var status = make("div", "message-status");
      var delivery = make("span", "delivery", (strings.statuses || {})[m.status] || m.status);
      delivery.dataset.status = m.status;
      status.appendChild(delivery);
      node.appendChild(status);
    }
    return node;
  }

  function insertMessage(m) {
    var box = messageBox();
    if (!box || !m || !m.id) {
      return;
    }
    var existing = box.querySelector('.message[data-id="' + m.id + '"]');
    if (existing) {
      updateDelivery(m);
      return;
    }
    var follow = nearBottom(box) || m.direction !== "in";
    var node = buildMessage(m);
    var later = all(".message", box).filter(function (other) {
      return Number(other.dataset.id) > m.id;
    })[0];
    if (later) {
      box.insertBefore(node, later);
    } else {
      box.appendChild(node);
    }
    if (follow) {
      scrollToBottom();
    }
  }

  function normalizeMessages() {
    // A reply shows up twice (HTTP answer and socket) or out of order: keep one, in id order.
    var box = messageBox();
    if (!box) {
      return;
    }
    var seen = {};
    var previous = 0;
    var ordered = true;
    all(".message", box).forEach(function (node) {
      var id = node.dataset.id;
      if (seen[id]) {
        node.parentNode.removeChild(node);
        return;
      }
      seen[id] = true;
      if (Number(id) < previous) {
        ordered = false;
      }
      previous = Number(id);
    });
    if (!ordered) {
      all(".message", box)
        .sort(function (a, b) {
          return Number(a.dataset.id) - Number(b.dataset.id);
        })
        .forEach(function (node) {
          box.appendChild(node);
        });
    }
  }

  function updateDelivery(m) {
    if (!m || !m.id || !m.status) {
      return;
    }
    var node = one('#messages .message[data-id="' + m.id + '"] .delivery');
    if (node) {
      node.dataset.status = m.status;
      node.textContent = (strings.statuses || {})[m.status] || m.status;
    }
  }

  function showTyping(visible) {
    var node = one("#typing");
    if (!node) {
      return;
    }
    window.clearTimeout(typingTimer);
    node.hidden = !visible;
    if (visible) {
      typingTimer = window.setTimeout(function () {
        node.hidden = true;
      }, TYPING_SHOWN_MS);
    }
  }

  function showChanged() {
    var notice = one("#conversation-notice");
    if (!notice || !notice.hidden) {
      return;
    }
    notice.textContent = strings.changed + " ";
    var reload = make("button", "link", strings.reload);
    reload.type = "button";
    reload.addEventListener("click", function () {
      window.location.reload();
    });
    notice.appendChild(reload);
    notice.hidden = false;
  }

  function refreshHead() {
    if (config.head_url && one("#chat-head") && window.htmx) {
      window.htmx.ajax("GET", config.head_url, { target: "#chat-head", swap: "outerHTML" });
    }
  }

  function refreshRecord() {
    if (one("#consultation-record") && window.htmx) {
      window.htmx.ajax("GET", window.location.pathname, {
        target: "#consultation-record",
        select: "#consultation-record",
        swap: "outerHTML",
      });
    } else {
      showChanged();
    }
  }

  // --- The list ------------------------------------------------------------------------------
  function refreshList() {
    // At most one refresh per second however many events come (a throttle, not a debounce:
    // a busy floor must not postpone it for ever).
    if (refreshTimer !== null) {
      return;
    }
    refreshTimer = window.setTimeout(function () {
      refreshTimer = null;
      if (window.htmx && one("#inbox-list")) {
        window.htmx.trigger(document.body, "inbox-refresh");
      }
    }, REFRESH_EVERY_MS);
  }

  function concernsList(conversation) {
    // Every agent hears about every chat; refresh only for those this list may show.
    if (!conversation || typeof conversation !== "object") {
      return true;
    }
    var list = one("#inbox-list");
    if (!list || list.dataset.view === "all") {
      return true;
    }
    if (one('.inbox-row[data-conversation="' + conversation.id + '"]')) {
      return true;
    }
    return conversation.assignee === null || conversation.assignee === config.user;
  }

  function highlight(id) {
    var row = one('.inbox-row[data-conversation="' + id + '"]');
    if (row) {
      row.classList.add("wait-alert");
    }
  }

  function readClock() {
    var list = one("#inbox-list");
    var serverNow = list ? Date.parse(list.dataset.now || "") : NaN;
    if (!isNaN(serverNow)) {
      clockOffset = serverNow - Date.now();
    }
  }

  function waitedLabel(seconds) {
    if (seconds < 60) {
      return format(strings.seconds, { n: seconds });
    }
    if (seconds < 3600) {
      return format(strings.minutes, { n: Math.floor(seconds / 60) });
    }
    return format(strings.hours, { n: Math.floor(seconds / 3600) });
  }

  function tickWaiting() {
    var now = Date.now() + clockOffset;
    all(".wait-badge[data-waiting-since]").forEach(function (badge) {
      var since = Date.parse(badge.dataset.waitingSince);
      if (isNaN(since)) {
        return;
      }
      var seconds = Math.max(0, Math.floor((now - since) / 1000));
      badge.textContent = waitedLabel(seconds);
      var late = seconds >= (config.wait_late_seconds || 60);
      badge.classList.toggle("late", late);
      var row = badge.closest(".inbox-row");
      if (row) {
        row.classList.toggle("late", late);
      }
    });
  }

  function lookedAt() {
    return !document.hidden && document.hasFocus();
  }

  function noteUnseen() {
    if (lookedAt()) {
      return;
    }
    unseen += 1;
    document.title = "(" + unseen + ") " + baseTitle;
  }

  function clearUnseen() {
    if (lookedAt() && unseen) {
      unseen = 0;
      document.title = baseTitle;
    }
  }

  function showStatus(status) {
    var select = one("#agent_status_status");
    var form = one("#status-switch");
    if (select && status && select.value !== status) {
      select.value = status;
    }
    if (form && status) {
      form.className = form.className.replace(/\bstatus-\w+/, "status-" + status);
    }
  }

  // --- The reply box: typing, Enter to send, quick replies -----------------------------------
  function sendTyping() {
    var now = Date.now();
    if (!conversationId || now - lastTypingSent < TYPING_EVERY_MS) {
      return;
    }
    if (send({ type: "typing", conversation: conversationId })) {
      lastTypingSent = now;
    }
  }

  function clearSuggestions() {
    var box = one("#quick-replies");
    if (box) {
      box.innerHTML = "";
    }
    lastQuery = null;
  }

  function suggest(value, force) {
    var box = one("#quick-replies");
    if (!box || !config.suggest_url || !window.htmx) {
      return;
    }
    var match = /^\/(\S*)$/.exec(value || "");
    if (!match) {
      if (lastQuery !== null) {
        clearSuggestions();
      }
      return;
    }
    if (match[1] === lastQuery && !force) {
      return;
    }
    lastQuery = match[1];
    window.clearTimeout(suggestTimer);
    suggestTimer = window.setTimeout(function () {
      var order = one("#quick-reply-order-no");
      window.htmx.ajax("GET", config.suggest_url, {
        target: "#quick-replies",
        swap: "innerHTML",
        values: { q: match[1], order_no: order ? order.value : "" },
      });
    }, 150);
  }

  function useQuickReply(button) {
    var body = one("#reply-body");
    if (!body) {
      return;
    }
    body.value = button.dataset.text || "";
    clearSuggestions();
    body.focus();
    body.setSelectionRange(body.value.length, body.value.length);
  }

  document.addEventListener("input", function (event) {
    var target = event.target;
    if (target.id === "reply-body") {
      sendTyping();
      suggest(target.value, false);
    } else if (target.id === "quick-reply-order-no") {
      var body = one("#reply-body");
      if (body) {
        suggest(body.value, true);
      }
    }
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (target.id !== "reply-body") {
      return;
    }
    if (event.key === "Escape") {
      clearSuggestions();
      return;
    }
    // Enter sends; Shift+Enter is a new line; Enter while an input method composes is not ours.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) {
      return;
    }
    event.preventDefault();
    var first = one("#quick-replies .quick-reply");
    if (first && /^\//.test(target.value)) {
      useQuickReply(first);
      return;
    }
    var file = one("#reply-attachment");
    var hasFile = file && file.files && file.files.length > 0;
    if (target.form && (target.value.trim() || hasFile)) {
      if (typeof target.form.requestSubmit === "function") {
        target.form.requestSubmit();
      } else {
        one("#reply-send").click();
      }
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest(".quick-reply") : null;
    if (button) {
      event.preventDefault();
      useQuickReply(button);
    }
  });

  // --- HTMX swaps ----------------------------------------------------------------------------
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    var box = messageBox();
    if (box && target && target.classList && target.classList.contains("load-earlier")) {
      keepScroll = box.scrollHeight - box.scrollTop; // stay on the same message
    }
  });

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail.target;
    var box = messageBox();
    normalizeMessages();
    if (keepScroll !== null && box) {
      box.scrollTop = box.scrollHeight - keepScroll;
      keepScroll = null;
    }
    if (target && target.id === "reply-panel") {
      scrollToBottom();
      var body = one("#reply-body");
      if (body && !one("#reply-errors .error")) {
        body.focus();
      }
    }
    if (target && target.id === "inbox-list") {
      readClock();
      tickWaiting();
    }
  });

  document.addEventListener("htmx:oobAfterSwap", function () {
    normalizeMessages();
    scrollToBottom();
  });

  document.addEventListener("visibilitychange", clearUnseen);
  window.addEventListener("focus", clearUnseen);
  window.addEventListener("pagehide", function () {
    stopped = true;
    if (socket) {
      socket.close();
    }
  });

  // --- Start ---------------------------------------------------------------------------------
  readClock();
  tickWaiting();
  window.setInterval(tickWaiting, 1000);
  scrollToBottom();
  connect();
})();
