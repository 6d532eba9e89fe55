// The import page: sends the chosen file to the import API, first as a dry
// run whose report is shown (what would be created, the balances that
// would result, the file's own balances where they differ, warnings), then,
// once the officer has seen it, for real. Everything is built with
// textContent: a file's names are never read as markup.
"use strict";
(function () {
  const form = document.getElementById("import-form");
  if (!form) return;
  const $ = (id) => document.getElementById(id);
  const say = (key) => form.getAttribute("data-msg-" + key) || key;
  const el = (tag, text) => {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = text;
    return node;
  };

  function table(rows, columns) {
    const t = el("table");
    const head = el("tr");
    for (const [label] of columns) head.append(el("th", label));
    const thead = el("thead");
    thead.append(head);
    t.append(thead);
    const body = el("tbody");
    for (const row of rows) {
      const tr = el("tr");
      for (const [, pick] of columns) tr.append(el("td", pick(row)));
      body.append(tr);
    }
    t.append(body);
    const scroll = el("div");
    scroll.className = "scroll";
    scroll.append(t);
    return scroll;
  }

  function show(report, written) {
    const out = $("import-report");
    out.replaceChildren();
    const heading = report.already_imported ? say("already") : written ? say("written") : say("preview");
    out.append(el("h2", heading));
    const facts = el("ul");
    facts.append(el("li", say("members") + ": " + report.members.created + " / " + report.members.matched));
    facts.append(el("li", say("entries") + ": " + report.entries));
    facts.append(el("li", say("raids") + ": " + report.raids));
    facts.append(el("li", say("time_zone") + ": " + report.time_zone));
    out.append(facts);
    if (report.mismatches.length) {
      out.append(el("h3", say("mismatches")));
      out.append(table(report.mismatches, [[say("name"), (m) => m.name], [say("stated"), (m) => m.stated], [say("balances"), (m) => m.rebuilt]]));
    }
    if (report.warnings.length) {
      out.append(el("h3", say("warnings")));
      const list = el("ul");
      for (const w of report.warnings) list.append(el("li", w));
      out.append(list);
    }
    out.append(el("h3", say("balances")));
    out.append(table(report.balances, [[say("name"), (b) => b.name], [say("balance"), (b) => b.balance]]));
  }

  async function send(dryRun) {
    const file = $("import-file").files[0];
    if (!file) { $("import-file").focus(); return; }
    const query = new URLSearchParams({ format: $("import-format").value, pool_id: $("import-pool").value });
    if (dryRun) query.set("dry_run", "true");
    $("import-said").textContent = "";
    let r;
    try {
      r = await fetch("/api/v1/guilds/" + encodeURIComponent(form.dataset.slug) + "/imports?" + query, {
        method: "POST", credentials: "same-origin", body: await file.arrayBuffer(),
      });
    } catch (_) {
      $("import-said").textContent = say("other");
      return;
    }
    const body = await r.json().catch(() => ({}));
    if (!r.ok) {
      $("import-said").textContent = (body.error && body.error.message) || say("other");
      $("import-run").disabled = true;
      return;
    }
    show(body, r.status === 201);
    $("import-run").disabled = !dryRun || body.already_imported;
  }

  $("import-preview").addEventListener("click", () => send(true));
  $("import-run").addEventListener("click", () => send(false));
  $("import-file").addEventListener("change", () => { $("import-run").disabled = true; });
})();
