// Live preview of a draft: re-sends the rules in the form whenever they change and shows
// the projected sample payload, its size, the classified changes and the shape.
(function () {
  "use strict";
  const panel = document.getElementById("contract-preview");
  if (!panel) return;
  const form = document.getElementById("contractversion_form");
  const csrf = document.querySelector("input[name=csrfmiddlewaretoken]");
  const part = (id) => document.getElementById(id);

  function changesTable(changes) {
    const container = document.createElement("div");
    if (!changes || changes.length === 0) {
      const p = document.createElement("p");
      p.textContent = "No changes against the version it replaces.";
      container.appendChild(p);
      return container;
    }
    const table = document.createElement("table");
    table.className = "contract-diff";
    const head = table.createTHead().insertRow();
    ["compatibility", "path", "change", "detail"].forEach(function (name) {
      const th = document.createElement("th");
      th.textContent = name;
      head.appendChild(th);
    });
    const body = table.createTBody();
    changes.forEach(function (change) {
      const row = body.insertRow();
      row.className = "change-" + change.compatibility + " kind-" + change.kind;
      [change.compatibility, change.path, change.kind, change.detail].forEach(function (text, i) {
        const cell = row.insertCell();
        const inner = document.createElement(i === 1 ? "code" : i === 0 ? "strong" : "span");
        inner.textContent = text;
        cell.appendChild(inner);
      });
    });
    container.appendChild(table);
    return container;
  }

  function render(data) {
    part("preview-data").textContent = JSON.stringify(data);
    const error = part("preview-error");
    error.hidden = !data.error;
    error.textContent = data.error || "";
    panel.dataset.payloadBytes = data.payloadBytes === undefined ? "" : data.payloadBytes;
    if (data.error) return;
    part("preview-size").textContent =
      "Sample payload: " + data.payloadBytes + " bytes, from " + data.rawBytes +
      " bytes of downstream data (" + Math.round(data.ratio * 100) + " %)";
    part("preview-payload").textContent = JSON.stringify(data.payload, null, 2);
    part("preview-shape").textContent = JSON.stringify(data.shape, null, 2);
    part("preview-changes").replaceChildren(changesTable(data.changes));
  }

  function currentRules() {
    const rules = [];
    document.querySelectorAll("#rules-group tr.form-row").forEach(function (row) {
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
        .then(render);
    }, 150);
  }

  render(JSON.parse(part("preview-data").textContent));
  if (form) {
    form.addEventListener("change", refresh);
    form.addEventListener("input", refresh);
  }
})();
