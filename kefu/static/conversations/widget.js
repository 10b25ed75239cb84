/*
 * Kefu web chat loader, for the company's own pages:
 *
 *     <script src="https://kefu.example/chat/<code>/widget.js" async></script>
 *
 * This file is the body of a function of `config`: the view behind /chat/<code>/widget.js
 * wraps it as (function (config) { ... })({url, code, title, label, close, color}), with the
 * button's words translated for the visitor's language.
 *
 * It adds a floating button at the bottom right; the button opens the chat page (/chat/<code>/)
 * in an iframe: a panel above the button, the whole screen on a phone. The iframe is made on
 * the first click, so a page whose visitor never chats loads nothing more. Everything lives in
 * a shadow root, so the site's styles and ours leave each other alone.
 *
 * Browsers that block storage in third-party frames leave the chat page without localStorage:
 * the loader then keeps the visitor's token for it in the site's own localStorage (it hands the
 * saved values over in the iframe's #fragment and takes updates by postMessage), so a reload
 * of the site still goes on with the same chat.
 */
var kefuWidget = (function () {
  "use strict";

  var registry = (window.__kefuChatWidgets = window.__kefuChatWidgets || {});
  var script = document.currentScript;
  var chatUrl = config.url;
  try {
    // The address the browser used for this script is the one that reaches Kefu (scheme, host,
    // port as the site wrote them), whatever Kefu believes its own address to be.
    if (script && script.src) chatUrl = new URL("./", script.src).href;
  } catch (e) {
    chatUrl = config.url;
  }

  var STORED = { visitor: true, last_id: true, pending: true };
  var STORED_MAX = 65536;

  function storageKey(name) { return "kefu-chat:" + config.code + ":" + name; }

  function savedState() {
    var state = {};
    try {
      for (var name in STORED) {
        var value = window.localStorage.getItem(storageKey(name));
        if (value !== null) state[name] = value;
      }
    } catch (e) { /* no storage here either: the chat starts afresh on each page */ }
    return state;
  }

  function frameUrl() {
    var origin = window.location.origin && window.location.origin !== "null" ? window.location.origin : "";
    return chatUrl + "#kefu=" + encodeURIComponent(JSON.stringify(savedState())) +
      "&origin=" + encodeURIComponent(origin);
  }

  var STYLE = [
    ":host { all: initial; }",
    ".kefu-button {",
    "  position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;",
    "  display: inline-flex; align-items: center; gap: 8px; padding: 12px 18px;",
    "  border: 0; border-radius: 999px; background: " + config.color + "; color: #fff;",
    "  font: 600 15px/1.2 -apple-system, BlinkMacSystemFont, 'PingFang SC', 'Microsoft YaHei',",
    "    'Noto Sans CJK SC', sans-serif;",
    "  box-shadow: 0 6px 20px rgba(0, 0, 0, .22); cursor: pointer;",
    "}",
    ".kefu-button:focus-visible { outline: 3px solid #fff; outline-offset: -6px; }",
    ".kefu-button svg { width: 20px; height: 20px; fill: currentColor; }",
    ".kefu-panel {",
    "  position: fixed; right: 20px; bottom: 84px; z-index: 2147483001;",
    "  width: 380px; height: 600px; max-height: calc(100vh - 104px);",
    "  border-radius: 12px; overflow: hidden; background: #fff;",
    "  box-shadow: 0 12px 40px rgba(0, 0, 0, .28); display: none;",
    "}",
    ".kefu-panel.open { display: block; }",
    ".kefu-panel iframe { display: block; width: 100%; height: 100%; border: 0; }",
    ".kefu-close {",
    "  position: absolute; top: 4px; right: 4px; width: 44px; height: 44px; padding: 0;",
    "  border: 0; border-radius: 8px; background: transparent; color: #fff; cursor: pointer;",
    "  font: 400 28px/44px sans-serif; text-align: center;",
    "}",
    ".kefu-close:focus-visible { outline: 2px solid #fff; }",
    "@media (max-width: 480px) {",
    "  .kefu-panel { inset: 0; right: 0; bottom: 0; width: 100%; height: 100%;",
    "    max-height: none; border-radius: 0; }",
    "  .kefu-panel.open + .kefu-button { display: none; }",
    "}",
  ].join("\n");

  var ICON =
    '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 ' +
    '2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2zm3 6a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 ' +
    '0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3zm5 0a1.5 1.5 0 1 0 0 3 1.5 1.5 0 0 0 0-3z"/></svg>';

  function setup() {
    if (registry[chatUrl]) return registry[chatUrl]; // the tag is on the page twice
    var host = document.createElement("div");
    host.id = "kefu-chat-" + config.code;
    host.setAttribute("data-kefu-chat", config.code);
    var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;

    var style = document.createElement("style");
    style.textContent = STYLE;

    var panel = document.createElement("div");
    panel.className = "kefu-panel";
    panel.setAttribute("role", "dialog");
    panel.setAttribute("aria-label", config.title);

    var close = document.createElement("button");
    close.type = "button";
    close.className = "kefu-close";
    close.setAttribute("aria-label", config.close);
    close.title = config.close;
    close.textContent = "\u00d7";

    var button = document.createElement("button");
    button.type = "button";
    button.className = "kefu-button";
    button.setAttribute("aria-expanded", "false");
    button.innerHTML = ICON;
    var label = document.createElement("span");
    label.textContent = config.label;
    button.appendChild(label);

    var frame = null;

    function open() {
      if (!frame) {
        frame = document.createElement("iframe");
        frame.src = frameUrl();
        frame.title = config.title;
        frame.setAttribute("allow", "clipboard-write");
        panel.insertBefore(frame, close);
      }
      panel.classList.add("open");
      button.setAttribute("aria-expanded", "true");
      try { frame.focus(); } catch (e) { /* focus is a courtesy */ }
    }

    function hide() {
      panel.classList.remove("open");
      button.setAttribute("aria-expanded", "false");
      button.focus();
    }

    function toggle() {
      if (panel.classList.contains("open")) hide(); else open();
    }

    // The chat page's storage, kept here when its own is blocked (only from our iframe).
    window.addEventListener("message", function (event) {
      var data = event.data;
      if (!frame || event.source !== frame.contentWindow || !data || data.kefu !== "store") return;
      if (!Object.prototype.hasOwnProperty.call(STORED, data.key)) return;
      try {
        if (data.value === null || data.value === undefined) {
          window.localStorage.removeItem(storageKey(data.key));
        } else {
          window.localStorage.setItem(storageKey(data.key), String(data.value).slice(0, STORED_MAX));
        }
      } catch (e) { /* storage blocked on the site too */ }
    });

    button.addEventListener("click", toggle);
    close.addEventListener("click", hide);
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && panel.classList.contains("open")) hide();
    });

    panel.appendChild(close);
    root.appendChild(style);
    root.appendChild(panel);
    root.appendChild(button);
    document.body.appendChild(host);

    registry[chatUrl] = { open: open, close: hide, toggle: toggle };
    return registry[chatUrl];
  }

  if (document.body) {
    return setup();
  }
  document.addEventListener("DOMContentLoaded", setup);
  return null;
})();
