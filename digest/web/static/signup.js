/* digest sign-up: the optional script of the `digest form` snippet. It asks digest for a signed
   stamp (and a proof-of-work challenge when one is needed) before the reader submits, then
   submits with fetch and shows the answer in place: the reader never leaves the blog. Without
   it the form posts normally and the reader confirms on digest's own page. */
(function () {
  "use strict";
  function setup(form) {
    var action = form.getAttribute("action");
    var status = form.querySelector(".digest-signup-status");
    var messages = {
      sent: form.getAttribute("data-sent") || "Check your inbox: a confirmation link is on its way.",
      wait: form.getAttribute("data-wait") || "One moment, then press the button again.",
      invalid: form.getAttribute("data-invalid") || "This address cannot subscribe."
    };
    function hidden(name, value) {
      var input = form.querySelector('input[name="' + name + '"]');
      if (!input) {
        input = document.createElement("input");
        input.type = "hidden";
        input.name = name;
        form.insertBefore(input, form.querySelector("button"));
      }
      input.value = value;
    }
    function challenge(data, widget) {
      if (!data) return;
      var old = form.querySelector("altcha-widget");
      if (old) old.parentNode.removeChild(old);
      var load = document.querySelector('script[data-digest-altcha]');
      if (!load) {
        load = document.createElement("script");
        load.src = widget;
        load.setAttribute("data-digest-altcha", "");
        document.head.appendChild(load);
      }
      var element = document.createElement("altcha-widget");
      element.setAttribute("challenge", JSON.stringify(data));
      element.setAttribute("name", "altcha");
      element.setAttribute("configuration", JSON.stringify({ hideFooter: true }));
      form.insertBefore(element, form.querySelector("button"));
    }
    var widget = action.replace(/\/subscribe$/, "/static/altcha.min.js");
    fetch(action + "/start", { credentials: "omit", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (start) {
        hidden("stamp", start.stamp);
        challenge(start.challenge, start.widget || widget);
        form.addEventListener("submit", function (event) {
          event.preventDefault();
          var body = new URLSearchParams(new FormData(form));
          fetch(action, {
            method: "POST",
            body: body,
            credentials: "omit",
            headers: { Accept: "application/json" }
          })
            .then(function (r) { return r.json(); })
            .then(function (answer) {
              if (answer.status === "check-inbox") {
                status.textContent = messages.sent;
                form.querySelector("button").disabled = true;
              } else if (answer.status === "confirm") {
                hidden("stamp", answer.stamp);
                challenge(answer.challenge, widget);
                status.textContent = messages.wait;
              } else {
                status.textContent = messages.invalid;
              }
            })
            .catch(function () { form.submit(); });
        });
      })
      .catch(function () { /* digest unreachable: the form posts as a plain form */ });
  }
  var forms = document.querySelectorAll("form.digest-signup");
  for (var i = 0; i < forms.length; i++) setup(forms[i]);
})();
