// berth console: the parts of forms that need a script. Template upload
// streams the file to the API (POST /v1/templates, the same streamed
// upload scripts use) with a progress bar, and shows the API's message
// beside the field when it refuses; the copy button puts a just-created
// token on the clipboard. Without this file the pages still say what to
// do instead. No inline scripts: the pages run under a strict CSP.
(function () {
  "use strict";

  function all(selector, root) {
    return Array.prototype.slice.call((root || document).querySelectorAll(selector));
  }

  all("[data-template-upload]").forEach(function (form) {
    var api = form.getAttribute("data-api");
    var file = form.querySelector('input[type="file"]');
    var replace = form.querySelector('input[name="replace"]');
    var csrf = form.querySelector('input[name="csrf"]');
    var error = form.querySelector("[data-upload-error]");
    var field = form.querySelector("[data-upload-field]");
    var block = form.querySelector("[data-upload-progress]");
    var bar = block.querySelector("progress");
    var percent = block.querySelector("[data-upload-percent]");
    var button = form.querySelector('button[type="submit"]');
    form.hidden = false;

    function refuse(message) {
      error.textContent = message;
      error.hidden = false;
      field.classList.add("has-error");
      file.setAttribute("aria-invalid", "true");
      block.hidden = true;
      button.disabled = false;
    }

    function clear() {
      error.textContent = "";
      error.hidden = true;
      field.classList.remove("has-error");
      file.removeAttribute("aria-invalid");
    }

    file.addEventListener("change", clear);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      clear();
      var chosen = file.files && file.files[0];
      if (!chosen) {
        refuse("Choose an archive to upload.");
        return;
      }
      var url = api + "/templates?name=" + encodeURIComponent(chosen.name) +
        (replace && replace.checked ? "&replace=true" : "");
      var request = new XMLHttpRequest();
      request.open("POST", url);
      request.setRequestHeader("Content-Type", "application/octet-stream");
      request.setRequestHeader("Accept", "application/json");
      request.setRequestHeader("X-CSRF-Token", csrf.value);
      request.upload.addEventListener("progress", function (progress) {
        if (progress.lengthComputable && progress.total > 0) {
          var done = Math.floor(100 * progress.loaded / progress.total);
          bar.value = done;
          percent.textContent = done + " %";
        }
      });
      request.addEventListener("load", function () {
        if (request.status === 201) {
          // The list, counts and digest come from the server.
          window.location.reload();
          return;
        }
        var message = "The upload was refused (HTTP " + request.status + ").";
        try {
          message = JSON.parse(request.responseText).message || message;
        } catch (ignored) { /* not the API's JSON: keep the status */ }
        refuse(message);
      });
      request.addEventListener("error", function () {
        refuse("The upload was cut off before the server answered; try again.");
      });
      bar.value = 0;
      percent.textContent = "0 %";
      block.hidden = false;
      button.disabled = true;
      request.send(chosen);
    });
  });

  all("[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    var said = button.parentNode.querySelector("[data-copied]");
    if (!source || !navigator.clipboard) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.value).then(function () {
        said.textContent = "Copied.";
      }, function () {
        source.select();
        said.textContent = "Select the token and copy it.";
      });
    });
  });
}());
