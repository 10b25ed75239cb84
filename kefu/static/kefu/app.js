/* Kefu's small page behaviours, bound by data attributes.
 *
 * The pages' Content-Security-Policy runs no inline script: no onclick=, no hx-on (htmx would
 * eval it). So a template asks for a behaviour with an attribute and this file provides it:
 *
 *   data-submit-on-change           on a select: changing it submits its form
 *   data-confirm="Question?"        on a form: submitting asks first (also for htmx forms)
 *   data-remove-on-success          on an htmx element: removed once its request succeeded
 *   data-select-on-click            on an input: a click selects its text (to copy a link)
 *   data-enter-does-not-submit      on an input: Enter does not submit the form
 *   data-pick-value="7" data-pick-input="id" data-pick-label="text"
 *     data-pick-shows-in="id" data-pick-clears="id"
 *                                   on a button: puts the value into the input, shows the
 *                                   label, empties the list of choices
 */
(function () {
  "use strict";

  function closest(target, selector) {
    return target && target.closest ? target.closest(selector) : null;
  }

  document.addEventListener("change", function (event) {
    var select = closest(event.target, "[data-submit-on-change]");
    if (select && select.form) select.form.submit();
  });

  // Capture: runs before htmx's own submit handler, so a "no" stops htmx requests too.
  document.addEventListener(
    "submit",
    function (event) {
      var form = closest(event.target, "form[data-confirm]");
      if (form && !window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
        event.stopImmediatePropagation();
      }
    },
    true
  );

  document.addEventListener("click", function (event) {
    var field = closest(event.target, "[data-select-on-click]");
    if (field && field.select) field.select();
    var pick = closest(event.target, "[data-pick-value]");
    if (!pick) return;
    var input = document.getElementById(pick.getAttribute("data-pick-input"));
    var shown = document.getElementById(pick.getAttribute("data-pick-shows-in"));
    var list = document.getElementById(pick.getAttribute("data-pick-clears"));
    if (input) input.value = pick.getAttribute("data-pick-value");
    if (shown) shown.textContent = pick.getAttribute("data-pick-label") || "";
    if (list) list.replaceChildren();
  });

  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && closest(event.target, "[data-enter-does-not-submit]")) {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var element = event.detail && event.detail.elt;
    if (event.detail.successful && element && element.hasAttribute &&
        element.hasAttribute("data-remove-on-success")) {
      element.remove();
    }
  });
})();
