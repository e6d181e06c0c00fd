// Behaviour of the public pages, kept out of the markup (the site's Content-Security-Policy
// allows no inline script).
(function () {
  "use strict";

  // <button data-print>: print the page.
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.addEventListener("click", function () {
      window.print();
    });
  });

  // <form data-confirm="Question?"> or <button data-confirm="...">: ask before an action that
  // cannot be undone.
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      var submitter = event.submitter;
      var question =
        (submitter && submitter.getAttribute("data-confirm")) ||
        form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        event.preventDefault();
      }
    },
    true
  );
})();
