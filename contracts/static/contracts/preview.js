// Live preview of a draft: re-sends the rules in the form whenever a field changes and
// shows the resulting shape, the projected sample payload, its size and the diff.
(function () {
  "use strict";
  const panel = document.getElementById("contract-preview");
  if (!panel) return;
  const form = document.getElementById("contractversion_form");
  const output = panel.querySelector("pre");
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]");

  function currentRules() {
    const rules = [];
    document.querySelectorAll("tr.form-row, tr.dynamic-rules").forEach(function (row) {
      const field = row.querySelector("select[name$='-field']");
      const out = row.querySelector("input[name$='-output_name']");
      const del = row.querySelector("input[name$='-DELETE']");
      if (!field || !field.value || (del && del.checked)) return;
      rules.push({ field: field.value, output: out ? out.value : "" });
    });
    return rules;
  }

  let pending = null;
  function refresh() {
    clearTimeout(pending);
    pending = setTimeout(function () {
      fetch(panel.dataset.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf ? csrf.value : "" },
        body: JSON.stringify({ rules: currentRules() }),
        credentials: "same-origin",
      })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          output.textContent = JSON.stringify(data, null, 2);
          panel.dataset.payloadBytes = data.payloadBytes === undefined ? "" : data.payloadBytes;
          panel.classList.toggle("preview-error", Boolean(data.error));
        });
    }, 150);
  }

  if (form) {
    form.addEventListener("change", refresh);
    form.addEventListener("input", refresh);
  }
})();
