// dora's dashboard: a full view on connect, then deltas over server-sent events.
// Numbers arrive as integers in dora's units (price 1/10,000 $, count 1/100 contract,
// money 1/1,000,000 $) and are only formatted here, for display.
"use strict";
(function () {
  const $ = id => document.getElementById(id);
  const stats = window.doraStats = {
    firstFullMs: null, fulls: 0, deltas: 0, applyMs: [], lastSeq: 0, rows: 0,
  };
  const COLORS = { daily_pnl: "#1d2330", realized_pnl: "#2457c5", unrealized_pnl: "#8e44ad", fees: "#b26a00" };
  const DAY_SERIES = [
    ["daily_pnl", "daily PnL", 2.2], ["realized_pnl", "realized (gross)", 1.5],
    ["unrealized_pnl", "unrealized", 1.5], ["fees", "fees (paid)", 1.5],
  ];
  let session = { authenticated: false, csrf: null, market_fields: [], global_fields: [] };
  let panels = null;                 // the latest view, without its market rows
  const rows = new Map();            // ticker -> {data, tr, cells}
  let order = [];                    // tickers in the order the table shows them
  let sortKey = "ticker", sortDir = 1;
  let selected = null, history = null;
  let day = { day: "", t: [] };
  let lastSeq = 0, lastUpdateMs = 0, source = null;

  // ---- formatting --------------------------------------------------------------------------
  const price = p => p === null || p === undefined ? "–" : (p / 10000).toFixed(4).replace(/0{1,2}$/, "");
  const count = c => c === null || c === undefined ? "–" : (c / 100).toFixed(2).replace(/\.00$/, "");
  const signedCount = c => c === null || c === undefined ? "–" : (c > 0 ? "+" : "") + count(c);
  // one formatter each: toLocaleString() builds a new one per call (500 rows x 3 a tick)
  const dollars = new Intl.NumberFormat("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const timeOfDay = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  function money(m) {
    if (m === null || m === undefined) return "–";
    return (m < 0 ? "−$" : "$") + dollars.format(Math.abs(m) / 1e6);
  }
  const clock = ms => ms ? timeOfDay.format(ms) : "";
  const sign = v => v > 0 ? "pos" : v < 0 ? "neg" : "";

  function setText(el, text) { if (el.textContent !== text) el.textContent = text; }
  function setClass(el, name) { if (el.className !== name) el.className = name; }
  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  // ---- the markets table -------------------------------------------------------------------
  const COLUMNS = ["ticker", "state", "bid", "ask", "our_bid", "our_ask", "position", "realized_pnl", "unrealized_pnl", "pnl", "reason"];
  function quote(q) { return q ? `${count(q.size)} @ ${price(q.price)}` : "–"; }
  function sortValue(d, key) {
    switch (key) {
      case "ticker": return d.ticker;
      case "state": return (d.enabled ? "" : "~") + d.status;
      case "our_bid": return d.quotes.bid ? d.quotes.bid.price : -1;
      case "our_ask": return d.quotes.ask ? d.quotes.ask.price : -1;
      case "reason": return d.reason || "";
      default: return d[key] === null || d[key] === undefined ? -Infinity : d[key];
    }
  }

  function makeRow(ticker) {
    const tr = document.createElement("tr");
    tr.dataset.ticker = ticker;
    const cells = COLUMNS.map((key, i) => {
      const td = document.createElement("td");
      if (i >= 2 && i <= 9) td.className = "num";
      if (key === "reason") td.className = "reason";
      tr.appendChild(td);
      return td;
    });
    const bar = document.createElement("span");
    bar.className = "capbar";
    bar.appendChild(document.createElement("b"));
    cells[6].text = document.createTextNode("");
    cells[6].append(cells[6].text, bar);
    cells[0].text = document.createTextNode(ticker);
    cells[0].tag = document.createElement("span");
    cells[0].append(cells[0].text, " ", cells[0].tag);
    tr.addEventListener("click", () => select(ticker));
    return { tr, cells, bar: bar.firstChild, data: null };
  }

  function fillRow(entry, d) {
    const { tr, cells } = entry;
    entry.data = d;
    const attrs = {
      position: d.position, bid: d.bid, ask: d.ask, realized: d.realized_pnl,
      unrealized: d.unrealized_pnl, pnl: d.pnl,
      ourBid: d.quotes.bid ? d.quotes.bid.price : "", ourAsk: d.quotes.ask ? d.quotes.ask.price : "",
    };
    for (const [k, v] of Object.entries(attrs)) {
      const text = v === null || v === undefined ? "" : String(v);
      if (tr.dataset[k] !== text) tr.dataset[k] = text;
    }
    setClass(tr, (d.enabled ? "" : "disabled") + (d.ticker === selected ? " selected" : ""));
    // a value of it could not be read (a key of the wrong type, a position that does not decode)
    const corrupt = (d.corrupt && d.corrupt.length) || d.position === null;
    const tag = corrupt ? "corrupt" : d.stale ? "stale" : !d.enabled ? "off" : "";
    setText(cells[0].tag, tag);
    setClass(cells[0].tag, tag ? "tag " + (corrupt || d.stale ? "stale" : "") : "");
    cells[0].tag.title = corrupt ? d.error : d.stale_reason || d.error || "";
    setText(cells[1], d.enabled ? d.status || "?" : "disabled");
    setText(cells[2], d.bid === null ? "–" : `${price(d.bid)} ×${count(d.bid_size)}`);
    setText(cells[3], d.ask === null ? "–" : `${price(d.ask)} ×${count(d.ask_size)}`);
    setText(cells[4], quote(d.quotes.bid));
    setText(cells[5], quote(d.quotes.ask));
    const cap = d.position >= 0 ? d.cap_yes : d.cap_no;
    setText(cells[6].text, `${signedCount(d.position)} / ${count(cap)}`);
    const used = cap ? Math.min(1, Math.abs(d.position || 0) / cap) : 0;
    const width = Math.round(used * 100) + "%";
    if (entry.bar.style.width !== width) entry.bar.style.width = width;
    setClass(entry.bar, used >= 0.9 ? "high" : "");
    for (const [i, key] of [[7, "realized_pnl"], [8, "unrealized_pnl"], [9, "pnl"]]) {
      setText(cells[i], money(d[key]));
      setClass(cells[i], "num " + sign(d[key]));
    }
    setText(cells[10], d.reason || "");
    cells[10].title = d.reason || "";
  }

  function visible(d) {
    const text = $("market-filter").value.trim().toLowerCase();
    if (text && !d.ticker.toLowerCase().includes(text) && !(d.reason || "").toLowerCase().includes(text)) return false;
    switch ($("market-show").value) {
      case "enabled": return d.enabled;
      case "position": return !!d.position;
      case "quoting": return !!(d.quotes.bid || d.quotes.ask);
      case "stale": return d.stale;
      default: return true;
    }
  }

  function arrange() {
    const entries = [...rows.values()];
    entries.sort((a, b) => {
      const x = sortValue(a.data, sortKey), y = sortValue(b.data, sortKey);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return c * sortDir || (a.data.ticker < b.data.ticker ? -1 : 1);
    });
    let shown = 0;
    for (const e of entries) {
      const show = visible(e.data);
      if (e.tr.hidden === show) e.tr.hidden = !show;
      shown += show;
    }
    const next = entries.map(e => e.data.ticker);
    if (next.length !== order.length || next.some((t, i) => t !== order[i])) {
      const body = $("markets").tBodies[0];
      const fragment = document.createDocumentFragment();
      for (const e of entries) fragment.appendChild(e.tr);
      body.appendChild(fragment);
      order = next;
    }
    setText($("market-count"), `${shown} shown of ${rows.size}`);
    stats.rows = rows.size;
  }

  function applyRows(changed, removed, reset) {
    const body = $("markets").tBodies[0];
    if (reset) { body.replaceChildren(); rows.clear(); order = []; }
    for (const ticker of removed || []) {
      const e = rows.get(ticker);
      if (e) { e.tr.remove(); rows.delete(ticker); }
    }
    for (const d of changed) {
      let e = rows.get(d.ticker);
      if (!e) { e = makeRow(d.ticker); rows.set(d.ticker, e); body.appendChild(e.tr); }
      fillRow(e, d);
    }
    arrange();
  }

  // ---- the panels --------------------------------------------------------------------------
  function gauge(fillId, textId, used, text) {
    const fill = $(fillId);
    fill.style.width = Math.round(Math.max(0, Math.min(1, used)) * 100) + "%";
    setClass(fill, "gauge-fill" + (used >= 0.8 ? " high" : used >= 0.5 ? " mid" : ""));
    setText($(textId), text);
  }

  function rowsOf(table, items, make) {
    const body = $(table).tBodies[0];
    body.replaceChildren(...items.map(item => {
      const tr = document.createElement("tr");
      tr.append(...make(item));
      return tr;
    }));
  }

  // ``changed``: the parts this message carries (a delta leaves out what did not change)
  function applyPanels(v, changed) {
    panels = v;
    const has = name => name in changed;
    const risk = v.risk || {}, limits = v.limits || {};
    const state = $("trading-state");
    const unreadable = risk.halted === null;  // dora:risk itself could not be read
    setText(state, risk.halted ? "HALTED" : unreadable ? "RISK UNREADABLE" : "TRADING");
    setClass(state, "state " + (risk.halted || unreadable ? "halted" : "trading"));
    setText($("halt-reason-shown"), risk.halted ? risk.reason || "" : risk.error || "");
    const card = $("risk-card").dataset;  // the raw numbers, for scripts and tests
    card.halted = risk.halted ? "1" : "0";
    card.dailyPnl = risk.daily_pnl ?? "";
    card.exposure = risk.total_exposure ?? "";
    const loss = Math.max(0, -(risk.daily_pnl || 0));
    gauge("pnl-fill", "pnl-text", limits.max_daily_loss ? loss / limits.max_daily_loss : 0,
      `${money(risk.daily_pnl)} of −${money(limits.max_daily_loss).replace("−", "")} limit`);
    gauge("exposure-fill", "exposure-text", limits.max_total_exposure ? (risk.total_exposure || 0) / limits.max_total_exposure : 0,
      `${money(risk.total_exposure)} of ${money(limits.max_total_exposure)}`);
    setText($("pnl-parts"), `realized ${money(risk.realized_pnl)} · unrealized ${money(risk.unrealized_pnl)} · fees ${money(risk.fees)} · checked ${clock(risk.last_check_ms)}`);
    if (v.events && v.events.length) {
      const lines = v.events.map(e => `${e.event}: worst ${money(e.worst_loss)} of ${money(e.limit)}`);
      setText($("events"), lines.join(" · "));
    } else setText($("events"), limits.max_event_loss ? `limit ${money(limits.max_event_loss)}; per event —` : "—");
    setText($("exchange"), v.exchange ? Object.entries(v.exchange).map(([k, x]) => `${k}: ${x}`).join(" · ") : "—");
    const invalid = Object.entries(v.invalid_config || {});
    setText($("invalid-config"), invalid.length ? "invalid config: " + invalid.map(([t, r]) => `${t}: ${r}`).join("; ") : "");
    if (has("processes")) rowsOf("processes", Object.entries(v.processes || {}), ([name, p]) => {
      const lags = Object.entries(p.lags || {}).map(([k, ms]) => `${k.replace("_lag_ms", "")} ${ms} ms`).join(", ");
      const up = document.createElement("td"), tag = document.createElement("span");
      tag.className = "tag " + (p.alive ? "up" : "down");
      tag.textContent = p.alive ? "up" : "DOWN";
      up.appendChild(tag);
      return [cell(name), up, cell(p.alive ? `${((p.age_ms || 0) / 1000).toFixed(1)} s ago` : "–"), cell(lags || "–"), cell(String(p.api_errors ?? "–"), "num")];
    });
    const lag = v.persister_lag;
    setText($("persister-lag"), lag && typeof lag === "object"
      ? `persister: ${lag.backlog ?? "?"} event(s) not yet in DynamoDB` : "");
    if (has("fills")) rowsOf("fills", (v.fills || []).slice(0, 15), f => [
      cell(clock(f.ts_ms)), cell(f.ticker), cell(f.side), cell(count(f.count), "num"), cell(price(f.price), "num"),
      cell(money(f.fee), "num"), cell(signedCount(f.position_after), "num"),
    ]);
    if (has("orders")) rowsOf("orders", (v.orders || []).slice(0, 15), o => [
      cell(clock(o.ts_ms)), cell(o.event), cell(o.ticker), cell(o.side), cell(price(o.price), "num"),
      cell(count(o.count), "num"), cell(count(o.remaining), "num"), cell(o.reason || ""),
    ]);
    if (has("past_days") || has("history_note")) {
      const days = (v.past_days || []).map(p => `${p.day}: ${money(p.daily_pnl)}`).join(" · ");
      setText($("past-days"), days + (v.history_note ? `  (${v.history_note})` : ""));
    }
    showConfig();
    lastUpdateMs = Date.now();
    setText($("updated"), "updated " + clock(v.ts_ms));
  }

  // ---- charts ------------------------------------------------------------------------------
  function drawDay() {
    setText($("pnl-day"), day.day ? `(${day.day})` : "");
    const series = DAY_SERIES.map(([key, label, width]) => ({
      label, width, color: COLORS[key], t: day.t,
      v: (day[key] || []).map(x => x === null ? null : (key === "fees" ? -x : x) / 1e6),
    }));
    window.doraChart.draw($("pnl-chart"), { series, zero: true, yFormat: v => "$" + v.toFixed(2), empty: "waiting for the risk process's first check" });
    if (!$("pnl-legend").childElementCount) window.doraChart.legend($("pnl-legend"), series);
  }

  function addDayPoints(pnlDay, points) {
    const newDay = pnlDay && pnlDay !== day.day;
    if (newDay) day = { day: pnlDay, t: [] };
    for (const p of points || []) {
      day.t.push(p.t);
      for (const [key] of DAY_SERIES) (day[key] = day[key] || []).push(p[key]);
    }
    if (newDay || (points && points.length)) drawDay();
  }

  function drawMarket() {
    if (!history) return;
    window.doraChart.draw($("market-position-chart"), {
      series: [{ label: "position", color: "#2457c5", t: history.t, v: history.position.map(p => p === null ? null : p / 100), steps: true }],
      zero: true, yFormat: v => v.toFixed(0),
    });
    const pnl = [
      { label: "PnL (net, marked to mid)", color: "#1d2330", t: history.t, v: history.pnl.map(m => m === null ? null : m / 1e6), width: 2 },
      { label: "realized (gross)", color: "#2457c5", t: history.t, v: history.realized_pnl.map(m => m === null ? null : m / 1e6) },
    ];
    window.doraChart.draw($("market-pnl-chart"), { series: pnl, zero: true, yFormat: v => "$" + v.toFixed(2) });
    if (!$("market-legend").childElementCount) window.doraChart.legend($("market-legend"), pnl);
  }

  async function select(ticker) {
    selected = ticker;
    for (const e of rows.values()) fillRow(e, e.data);
    $("market-detail").hidden = false;
    setText($("detail-ticker"), ticker);
    history = null;
    const answer = await fetch(`/api/history/${encodeURIComponent(ticker)}`).then(r => r.json());
    if (selected !== ticker) return;
    history = answer;
    const target = $("config-target");
    const option = [...target.options].find(o => o.value === ticker) || new Option(ticker, ticker);
    [...target.options].forEach(o => { if (o.value && o.value !== ticker) o.remove(); });
    if (!option.parentNode) target.add(option);
    target.value = ticker;
    fieldsFor();
    updateDetail();
  }

  function updateDetail() {
    const e = selected && rows.get(selected);
    if (!e) return;
    const d = e.data;
    setText($("detail-state"), `${d.enabled ? "enabled" : "disabled"} · ${d.status || "?"} · fair ${price(d.fair)}`);
    setText($("detail-config"), `caps +${count(d.cap_yes)} / −${count(d.cap_no)} · quote size ${count(d.quote_size)}`);
    if (history && panels && d.position !== null) {
      const last = history.t.length ? history.t[history.t.length - 1] : 0;
      if (panels.ts_ms - last >= 1000) {
        history.t.push(panels.ts_ms); history.position.push(d.position);
        history.realized_pnl.push(d.gross_realized_pnl); history.pnl.push(d.pnl);
      }
    }
    drawMarket();
  }

  // ---- config ------------------------------------------------------------------------------
  function fieldsFor() {
    const market = $("config-target").value;
    const names = market ? session.market_fields : session.global_fields;
    const select = $("config-field");
    if ([...select.options].map(o => o.value).join() !== names.join()) {
      select.replaceChildren(...names.map(n => new Option(n, n)));
    }
    showConfig();
  }

  function showConfig() {
    const market = $("config-target").value;
    if (market) {
      const e = rows.get(market);
      setText($("config-current"), e ? `${market}: enabled ${e.data.enabled ? "yes" : "no"}, max_inventory_yes ${count(e.data.cap_yes)}, max_inventory_no ${count(e.data.cap_no)}, quote_size ${count(e.data.quote_size)}` : "");
    } else if (panels) {
      const l = panels.limits || {};
      setText($("config-current"), `global (version ${l.version ?? "–"}): max_daily_loss ${money(l.max_daily_loss)}, max_total_exposure ${money(l.max_total_exposure)}, loop_interval_ms ${l.loop_interval_ms}, trading_enabled ${l.trading_enabled ? "yes" : "no"}` + (l.error ? ` (invalid: ${l.error})` : ""));
    }
  }

  // ---- controls ----------------------------------------------------------------------------
  function message(id, text, ok) {
    const el = $(id);
    el.textContent = text;
    el.className = "message " + (ok ? "ok" : "error");
  }

  async function post(path, body, messageId) {
    try {
      const response = await fetch(path, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-Dora-CSRF": session.csrf || "" },
        body: JSON.stringify(body || {}),
      });
      const answer = await response.json().catch(() => ({ ok: false, error: `HTTP ${response.status}` }));
      message(messageId, answer.ok ? answer.message : answer.error, answer.ok);
      return answer.ok;
    } catch (err) {
      message(messageId, `not sent: ${err}`, false);
      return false;
    }
  }

  function wireControls() {
    $("halt").addEventListener("click", () => post("/api/halt", { reason: $("halt-reason").value }, "control-message"));
    $("resume").addEventListener("click", () => post("/api/resume", { reason: $("halt-reason").value }, "control-message"));
    $("cancel-all").addEventListener("click", () => post("/api/cancel-all", {}, "control-message"));
    $("market-enable").addEventListener("click", () => selected && post(`/api/markets/${encodeURIComponent(selected)}/enable`, {}, "config-message"));
    $("market-disable").addEventListener("click", () => selected && post(`/api/markets/${encodeURIComponent(selected)}/disable`, {}, "config-message"));
    $("config-apply").addEventListener("click", () => {
      const market = $("config-target").value || null;
      post("/api/config", { market, changes: { [$("config-field").value]: $("config-value").value } }, "config-message");
    });
    $("config-target").addEventListener("change", fieldsFor);
    $("market-filter").addEventListener("input", arrange);
    $("market-show").addEventListener("change", arrange);
    for (const th of $("markets").tHead.rows[0].cells) {
      th.addEventListener("click", () => {
        const key = th.dataset.key;
        sortDir = key === sortKey ? -sortDir : (key === "ticker" || key === "reason" ? 1 : -1);
        sortKey = key;
        for (const other of th.parentNode.cells) other.className = other.className.replace(/ ?sorted-(asc|desc)/, "");
        th.className += (th.className ? " " : "") + (sortDir > 0 ? "sorted-asc" : "sorted-desc");
        arrange();
      });
    }
  }

  async function loadSession() {
    session = await fetch("/api/session", { credentials: "same-origin" }).then(r => r.json());
    const can = session.authenticated;
    for (const id of ["halt", "resume", "cancel-all", "market-enable", "market-disable", "config-apply"]) $(id).disabled = !can;
    $("login-form").hidden = can || !session.controls_configured;
    $("logout-form").hidden = !can;
    setText($("who"), can ? "operator" : session.controls_configured ? "read-only" : "read-only (no DORA_WEB_TOKEN)");
    if (new URLSearchParams(location.search).get("login") === "failed") message("control-message", "wrong token", false);
    fieldsFor();
  }

  // ---- the live feed -----------------------------------------------------------------------
  function timed(fn) {
    const t0 = performance.now();
    fn();
    const ms = performance.now() - t0;
    stats.applyMs.push(ms);
    if (stats.applyMs.length > 500) stats.applyMs.shift();
    return ms;
  }

  function onFull(data) {
    timed(() => {
      lastSeq = data.seq;
      applyPanels(data, data);
      applyRows(data.markets || [], [], true);
      const dp = data.day_pnl || { day: "", t: [] };
      day = dp;
      drawDay();
      updateDetail();
    });
    stats.fulls++;
    document.body.dataset.seq = lastSeq;
    if (stats.firstFullMs === null) requestAnimationFrame(() => { stats.firstFullMs = performance.now(); });
  }

  function onDelta(data) {
    if (lastSeq && data.seq !== lastSeq + 1) { reconnect(); return; }
    timed(() => {
      lastSeq = data.seq;
      const { markets, removed, pnl_points: _points, ...parts } = data;
      applyPanels({ ...panels, ...parts }, parts);
      applyRows(markets, removed, false);
      addDayPoints(data.pnl_day, data.pnl_points);
      updateDetail();
    });
    stats.deltas++;
    stats.lastSeq = lastSeq;
    document.body.dataset.seq = lastSeq;
  }

  function setLive(ok) {
    setText($("live"), ok ? "live" : "reconnecting…");
    setClass($("live"), "live " + (ok ? "ok" : "lost"));
  }

  function reconnect() {
    if (source) source.close();
    lastSeq = 0;
    source = new EventSource("/api/events");
    source.addEventListener("full", e => onFull(JSON.parse(e.data)));
    source.addEventListener("delta", e => onDelta(JSON.parse(e.data)));
    source.onopen = () => setLive(true);
    source.onerror = () => { setLive(false); lastSeq = 0; };
  }

  setInterval(() => {
    if (lastUpdateMs && Date.now() - lastUpdateMs > 3000) setText($("live"), `no update for ${Math.round((Date.now() - lastUpdateMs) / 1000)} s`);
  }, 1000);

  wireControls();
  loadSession();
  reconnect();
})();
