// Keys go to the agent; the screen comes back as a fragment when its version moves.
//
// On a busy cabinet computer two requests in flight can be answered in either order, so
// there is never more than one of each: a key press waits for the one before it (the
// agent takes the digits in the order they were typed), and a screen request waits for
// the one before it (the version asked past is always the one shown, so an older screen
// never replaces a newer one).
(function () {
  "use strict";
  var kiosk = document.getElementById("kiosk");
  var version = Number(kiosk.dataset.version);
  var keys = { Backspace: "backspace", Delete: "clear", Enter: "enter", Escape: "cancel" };
  var timer = null;
  var sent = Promise.resolve();  // the last input sent, answered or not
  var polling = false;
  var pollAgain = false;

  function post(path, field, value) {
    sent = sent.then(function () {
      return fetch(path, {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded", "X-Kiosk-Fetch": "1" },
        body: field + "=" + encodeURIComponent(value)
      }).catch(function () {});  // not sent again (it may have arrived): the screen tells
    });
    sent.then(poll);
  }

  function poll() {
    clearTimeout(timer);
    if (polling) {  // ask again when that answer is in: it may predate the input just sent
      pollAgain = true;
      return;
    }
    polling = true;
    fetch("/screen?after=" + version, { cache: "no-store" }).then(function (answer) {
      if (answer.status !== 200) { return; }
      var fresh = Number(answer.headers.get("X-Screen-Version"));
      return answer.text().then(function (html) {
        if (fresh > version) {
          version = fresh;
          show(html);
        }
      });
    }).catch(function () {}).then(function () {
      polling = false;
      if (pollAgain) {
        pollAgain = false;
        poll();
      } else {
        timer = setTimeout(poll, 300);
      }
    });
  }

  // Replace only the regions that changed, so the keypad under a finger stays in place
  // while digits are typed; a screen with other regions is replaced as a whole.
  function show(html) {
    var next = document.createElement("template");
    next.innerHTML = html.trim();
    var fresh = next.content.firstElementChild;
    var screen = kiosk.firstElementChild;
    var names = function (root) {
      return Array.prototype.map.call(root.querySelectorAll("[data-region]"), function (region) {
        return region.dataset.region;
      }).join(" ");
    };
    if (!screen || names(screen) !== names(fresh)) {
      kiosk.replaceChildren(fresh);
    } else {
      Array.prototype.forEach.call(fresh.attributes, function (attribute) {
        screen.setAttribute(attribute.name, attribute.value);
      });
      fresh.querySelectorAll("[data-region]").forEach(function (region) {
        var old = screen.querySelector('[data-region="' + region.dataset.region + '"]');
        if (old.outerHTML !== region.outerHTML) { old.replaceWith(region); }
      });
    }
    document.documentElement.lang = fresh.dataset.language;
    focusField();
  }

  // A courier screen with a text field: typing (or a keyboard-wedge scanner) goes there.
  function focusField() {
    var field = document.getElementById("courier-input");
    if (field && document.activeElement !== field) { field.focus(); }
  }

  document.addEventListener("keydown", function (event) {
    var typing = event.target.tagName === "INPUT";
    if (typing && event.key !== "Escape") { return; }  // the field takes its own keys
    var key = /^[0-9]$/.test(event.key) ? event.key : keys[event.key];
    if (!key || event.altKey || event.ctrlKey || event.metaKey) { return; }
    event.preventDefault();
    post("/key", "key", key);
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button || button.disabled) { return; }
    event.preventDefault();
    if (button.dataset.key) { post("/key", "key", button.dataset.key); }
    else if (button.dataset.language) { post("/language", "language", button.dataset.language); }
    else if (button.dataset.courier) { post("/courier/key", "key", button.dataset.courier); }
    else if (button.dataset.size) { post("/courier/size", "size", button.dataset.size); }
    else if (button.dataset.reason) { post("/courier/reason", "reason", button.dataset.reason); }
    else if (button.id === "courier-submit") { submitField(); }
  });

  // Enter in the field (or its OK button) sends the text once and empties the field.
  function submitField() {
    var field = document.getElementById("courier-input");
    if (!field) { return; }
    var value = field.value;
    field.value = "";
    post("/courier/text", "text", value);
  }

  document.addEventListener("submit", function (event) {
    if (event.target.id === "courier-field") {
      event.preventDefault();
      submitField();
    }
  });

  focusField();

  timer = setTimeout(poll, 300);
}());
