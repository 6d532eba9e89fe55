// The live auction room: follows one lot over the WebSocket (`lot:<id>`,
// and `me` for the caller's own wallet), counts down to the server's
// `ends_at`, and bids through the JSON API. After a dropped connection it
// subscribes again with `since` = the last offset it applied, so no bid is
// missed or shown twice; a `reset` reloads the lot over HTTP.
"use strict";
(function () {
  const room = document.getElementById("room");
  if (!room) return;
  const d = room.dataset;
  const api = "/api/v1/guilds/" + encodeURIComponent(d.slug) + "/lots/" + encodeURIComponent(d.lot);
  const lotChannel = "lot:" + d.lot;
  const sealed = d.mode !== "open";
  const $ = (id) => document.getElementById(id);
  const state = {
    seq: Number(d.seq),
    // The last offset shown in the feed: the first connection asks for the
    // lot's recent events too, which fill the feed without touching state.
    fed: Math.max(0, Number(d.seq) - 30),
    status: d.status,
    endsAt: Date.parse(d.ends),
    skew: Date.parse(d.now) - Date.now(),
    high: null,
    meOffset: null,
    names: null,
    tries: 0,
  };

  function message(code, values) {
    let text = room.getAttribute("data-msg-" + code) || room.getAttribute("data-msg-other");
    for (const [k, v] of Object.entries(values || {})) text = text.replace("{" + k + "}", v);
    return text;
  }
  function say(text, good) {
    const box = $("said");
    box.textContent = text;
    box.className = good ? "said good" : "said";
  }

  // Member names for the feed, read once from the API (one request shared
  // by every caller that asks while it runs).
  function names() {
    if (!state.names) {
      state.names = (async () => {
        const known = {};
        try {
          const url = "/api/v1/guilds/" + encodeURIComponent(d.slug) + "/members?include_inactive=true";
          const r = await fetch(url, { credentials: "same-origin" });
          if (r.ok) for (const m of (await r.json()).members) known[m.id] = m.name;
        } catch (_) { /* names are a nicety; the feed shows "?" without them */ }
        return known;
      })();
    }
    return state.names;
  }

  function tick() {
    const value = $("left-value");
    if (state.status !== "open") {
      value.textContent = "0:00";
      return;
    }
    const left = Math.max(0, Math.floor((state.endsAt - (Date.now() + state.skew)) / 1000));
    const m = Math.floor(left / 60), s = left % 60;
    value.textContent = m + ":" + String(s).padStart(2, "0");
    $("left").classList.toggle("soon", left <= 10);
  }

  async function showHigh(amount, memberId) {
    if (sealed) return;
    if (amount) {
      state.high = amount;
      $("high-amount").textContent = amount;
    }
    if (memberId) {
      const known = await names();
      $("high-leader").textContent = known[memberId] || "";
    }
  }

  async function addToFeed(offset, data) {
    const item = document.createElement("li");
    if (sealed || !data.amount) {
      item.textContent = "#" + data.bid_count;
    } else {
      const known = await names();
      item.textContent = (known[data.member_id] || "?") + " · " + data.amount;
    }
    item.dataset.offset = offset;
    $("feed").prepend(item);
    while ($("feed").children.length > 50) $("feed").lastElementChild.remove();
    $("feed-empty").textContent = data.bid_count + " " + $("feed-empty").textContent.replace(/^\d+\s*/, "");
  }

  async function closed(lot) {
    state.status = lot.status;
    const form = $("bid-form");
    if (form) form.remove();
    let text;
    if (lot.status === "cancelled") text = message("cancelled") + (lot.cancel_reason ? ": " + lot.cancel_reason : "");
    else if (lot.winner_member_id) text = message("closed") + " " + ((await names())[lot.winner_member_id] || "") + " · " + lot.price;
    else text = message("no_winner");
    $("result").textContent = text;
    if (lot.high_bid) { $("high-amount").textContent = lot.high_bid; }
    tick();
  }

  function apply(frame) {
    if (frame.channel === "me") {
      if (state.meOffset !== null && frame.offset <= state.meOffset) return;
      state.meOffset = frame.offset;
      const w = frame.data;
      if (w.pool_id === d.pool && w.member_id === d.member) $("available").textContent = w.available;
      return;
    }
    if (frame.channel !== lotChannel || frame.offset <= state.fed) return;
    state.fed = frame.offset;
    const data = frame.data;
    if (frame.offset <= state.seq) {
      // Already in the page's state: the feed's history only.
      if (frame.event === "bid_placed") addToFeed(frame.offset, data);
      return;
    }
    state.seq = frame.offset;
    if (data.ends_at) state.endsAt = Date.parse(data.ends_at);
    if (frame.event === "bid_placed") {
      showHigh(data.amount, data.member_id);
      addToFeed(frame.offset, data);
    } else if (frame.event === "lot_closed" || frame.event === "lot_cancelled") {
      closed(data.lot);
    }
    tick();
  }

  async function reload() {
    const r = await fetch(api, { credentials: "same-origin" });
    if (!r.ok) return;
    const lot = (await r.json()).lot;
    state.seq = lot.seq;
    state.fed = Math.max(state.fed, lot.seq);
    state.endsAt = Date.parse(lot.ends_at);
    if (lot.high_bid) showHigh(lot.high_bid, lot.leader_member_id);
    if (lot.status !== "open") closed(lot);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + "/api/v1/ws");
    socket.onopen = () => {
      state.tries = 0;
      room.classList.remove("offline");
      socket.send(JSON.stringify({ type: "subscribe", channel: lotChannel, since: Math.min(state.seq, state.fed) }));
      const me = { type: "subscribe", channel: "me" };
      if (state.meOffset !== null) me.since = state.meOffset;
      socket.send(JSON.stringify(me));
    };
    socket.onmessage = (e) => {
      let frame;
      try { frame = JSON.parse(e.data); } catch (_) { return; }
      if (frame.type === "event") apply(frame);
      else if (frame.type === "reset" && frame.channel === lotChannel) reload();
      else if (frame.type === "reset") state.meOffset = null;
    };
    socket.onclose = () => {
      if (state.status !== "open") return;
      room.classList.add("offline");
      const wait = Math.min(8000, 500 * 2 ** state.tries++);
      setTimeout(connect, wait);
    };
  }

  function numbersIn(text) {
    return (text.match(/-?\d+\.\d{2}/g) || []);
  }

  async function bid(event) {
    event.preventDefault();
    const input = $("bid-amount");
    const amount = input.value.trim().replace(",", ".");
    if (!amount) return;
    const key = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random());
    let r;
    try {
      r = await fetch(api + "/bids", {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", "idempotency-key": "room:" + key },
        body: JSON.stringify({ amount: amount }),
      });
    } catch (_) {
      say(message("offline"));
      return;
    }
    if (r.ok) {
      const body = await r.json();
      say(message("accepted", { amount: body.bid.amount }), true);
      if (body.lot && body.lot.seq > state.seq && !sealed) showHigh(body.lot.high_bid, body.lot.leader_member_id);
      return;
    }
    let error = { code: "other", message: "" };
    try { error = (await r.json()).error; } catch (_) { /* not JSON: a proxy's page */ }
    const found = numbersIn(error.message || "");
    const values = { minimum: found[0] || "", available: found[1] || found[0] || "", seconds: r.headers.get("retry-after") || "1" };
    say(message(room.hasAttribute("data-msg-" + error.code) ? error.code : "other", values));
    if (error.code === "bid_too_low" && found[0]) input.value = found[0];
    input.focus();
  }

  function step(event) {
    const steps = Number(event.currentTarget.dataset.step);
    const increment = Number(d.increment);
    const base = state.high !== null ? Number(state.high) : Number(d.min) - increment;
    const current = Number($("bid-amount").value) || base;
    $("bid-amount").value = (Math.max(current, base) + steps * increment).toFixed(2);
  }

  const form = $("bid-form");
  if (form) {
    form.addEventListener("submit", bid);
    for (const button of form.querySelectorAll("[data-step]")) {
      button.hidden = false;
      button.addEventListener("click", step);
    }
  }
  const shown = $("high-amount").textContent.trim();
  if (!sealed && /^\d/.test(shown)) state.high = shown;
  setInterval(tick, 250);
  tick();
  // A closed lot connects too, for its feed of bids.
  connect();
})();
