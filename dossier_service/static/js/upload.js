/*
 * Drag-and-drop upload with a progress bar.
 *
 * Enhances every form[data-upload]: a file can be dropped on the drop zone or chosen with
 * the (keyboard-reachable) file input; the form is then sent with XMLHttpRequest so the
 * <progress> bar shows the bytes sent. On an error the message appears in the form and
 * everything stays as it was (the chosen file too), so nothing has to be entered again.
 * Without JavaScript the same form posts normally.
 */
(function () {
  "use strict";

  function text(form, name, values) {
    var template = form.getAttribute("data-msg-" + name) || "";
    Object.keys(values || {}).forEach(function (key) {
      template = template.replace("{" + key + "}", values[key]);
    });
    return template;
  }

  function enhance(form) {
    var input = form.querySelector("input[type=file]");
    var zone = form.querySelector("[data-dropzone]");
    var progress = form.querySelector("[data-progress]");
    var status = form.querySelector("[data-status]");
    var error = form.querySelector("[data-error]");
    var fileName = form.querySelector("[data-file-name]");
    var button = form.querySelector("button[type=submit]");

    function showChosen() {
      var file = input.files && input.files[0];
      fileName.textContent = file ? text(form, "chosen", { name: file.name }) : "";
    }

    input.addEventListener("change", showChosen);
    ["dragenter", "dragover"].forEach(function (type) {
      zone.addEventListener(type, function (event) {
        event.preventDefault();
        zone.classList.add("dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (type) {
      zone.addEventListener(type, function (event) {
        event.preventDefault();
        zone.classList.remove("dragging");
      });
    });
    zone.addEventListener("drop", function (event) {
      if (event.dataTransfer && event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        showChosen();
      }
    });

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      error.textContent = "";
      if (!form.reportValidity()) { return; }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRF-Token", form.getAttribute("data-csrf"));
      xhr.setRequestHeader("X-Requested-With", "XMLHttpRequest");
      xhr.setRequestHeader("Accept", "application/json");
      progress.hidden = false;
      progress.value = 0;
      button.disabled = true;
      form.setAttribute("aria-busy", "true");
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) {
          var percent = Math.round((e.loaded / e.total) * 100);
          progress.value = percent;
          status.textContent = text(form, "progress", { percent: percent });
        }
      });
      xhr.upload.addEventListener("load", function () {
        progress.value = 100;
        status.textContent = text(form, "checking");
      });
      xhr.addEventListener("load", function () {
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        if (xhr.status === 201 && body) {
          status.textContent = body.message;
          form.setAttribute("data-uploaded", body.document_id);
          window.location.assign(body.redirect);
          return;
        }
        button.disabled = false;
        form.removeAttribute("aria-busy");
        progress.hidden = true;
        status.textContent = "";
        error.textContent = (body && body.error && body.error.message) || text(form, "failed");
      });
      xhr.addEventListener("error", function () {
        button.disabled = false;
        form.removeAttribute("aria-busy");
        progress.hidden = true;
        status.textContent = "";
        error.textContent = text(form, "failed");
      });
      xhr.send(new FormData(form));
    });
  }

  document.querySelectorAll("form[data-upload]").forEach(enhance);
})();
