// shopflow's live dashboard: the public API only.
// - GET /v1/status each second: input rows, rows/s and lag, plotted over time;
// - change subscriptions (Server-Sent Events, diff envelope) of four outputs. Each keeps
//   the output's rows as a multiset; changes are held back until a `progress` event says
//   their time is complete, so a panel always shows one complete time (its `as of`).
"use strict";

const HISTORY = 180; // samples kept for the charts (one per second)
const TOP = 10;

const $ = (selector) => document.querySelector(selector);

function text(value) {
  return value === null || value === undefined ? "–" : String(value);
}

// Cents as currency units, exactly (no floating point).
function money(cents) {
  const c = Math.trunc(Number(cents));
  return `${c < 0 ? "-" : ""}${Math.trunc(Math.abs(c) / 100)}.${String(Math.abs(c) % 100).padStart(2, "0")}`;
}

function percent(share) {
  return share === null || share === undefined ? "–" : (Number(share) * 100).toFixed(2) + " %";
}

function when(ms) {
  if (ms === null || ms === undefined) return "–";
  const date = new Date(Number(ms));
  return isNaN(date) ? String(ms) : `${ms} (${date.toISOString().replace("T", " ").replace(".000Z", " UTC")})`;
}

// One output's rows as of its last complete time, kept from its change subscription.
class Subscription {
  constructor(name, onUpdate) {
    this.name = name;
    this.onUpdate = onUpdate;
    this.rows = new Map(); // JSON of a row -> {row, count}
    this.pending = []; // [{time, changes}] not complete yet
    this.asOf = null; // the latest time applied
    this.lastBatch = null; // the last applied time's changes
    this.connect(null);
  }

  connect(since) {
    const query = since === null ? "" : `?since=${since}`;
    const source = new EventSource(`/v1/outputs/${this.name}/changes${query}`);
    this.source = source;
    let heard = false;
    source.addEventListener("changes", (event) => {
      const batch = JSON.parse(event.data);
      // Without `since`, the first event is the output's rows now, not a change.
      batch.snapshot = since === null && !heard;
      heard = true;
      this.pending.push(batch);
    });
    source.addEventListener("progress", (event) => {
      heard = true;
      this.complete(JSON.parse(event.data).complete);
    });
    // Either the server's own `error` event (this subscriber fell behind) or a lost
    // connection: resubscribe from the last applied time, or from scratch when that
    // does not work.
    source.addEventListener("error", (event) => {
      source.close();
      this.pending = [];
      const resume = heard && this.asOf !== null;
      if (!resume) {
        this.rows.clear();
        this.asOf = null;
      }
      setConnection(event.data ? `${this.name}: ${JSON.parse(event.data).error}` : `${this.name}: reconnecting…`);
      setTimeout(() => this.connect(resume ? this.asOf : null), 1000);
    });
  }

  // Every time before `frontier` is complete: apply what was held back.
  complete(frontier) {
    const held = [];
    for (const batch of this.pending) {
      if (batch.time >= frontier) {
        held.push(batch);
        continue;
      }
      for (const change of batch.changes) {
        const key = JSON.stringify(change.row);
        const count = (this.rows.get(key)?.count || 0) + change.diff;
        if (count === 0) this.rows.delete(key);
        else this.rows.set(key, { row: change.row, count });
      }
      this.asOf = batch.time;
      if (batch.changes.length > 0 && !batch.snapshot) this.lastBatch = batch;
    }
    this.pending = held;
    setConnection("live");
    this.onUpdate(this);
  }

  list() {
    const out = [];
    for (const { row, count } of this.rows.values()) for (let i = 0; i < count; i++) out.push(row);
    return out;
  }
}

function setConnection(message) {
  $("#connection").textContent = message;
}

function fill(panel, subscription, rows) {
  const section = $(panel);
  section.dataset.asOf = text(subscription.asOf);
  section.querySelector(".as-of").textContent = `as of ${when(subscription.asOf)}`;
  const body = section.querySelector("tbody");
  body.replaceChildren(
    ...rows.map((cells) => {
      const tr = document.createElement("tr");
      for (const cell of cells) {
        const td = document.createElement("td");
        if (cell instanceof Node) td.append(cell);
        else td.textContent = text(cell);
        tr.append(td);
      }
      return tr;
    }),
  );
}

// A comparator over `[field, descending]` pairs, the first that differs deciding.
function order(...fields) {
  return (a, b) => {
    for (const [field, descending] of fields) {
      const d = Number(a[field]) - Number(b[field]);
      if (d !== 0) return descending ? -d : d;
    }
    return 0;
  };
}

// The top items of all categories: every item in the global top 10 by buys is in its
// category's top 10, so the per-category lists hold the answer.
function topItems(s) {
  const rows = s.list().sort(order(["buys", true], ["gmv_cents", true], ["item_id", false])).slice(0, TOP);
  fill("#top-items", s, rows.map((r) => [r.item_id, r.category_id, r.buys, money(r.gmv_cents)]));
}

function topCategories(s) {
  const rows = s.list().sort(order(["gmv_cents", true], ["category_id", false])).slice(0, TOP);
  fill("#top-categories", s, rows.map((r) => [r.category_id, r.impressions, r.clicks, r.buys, money(r.gmv_cents), r.uv]));
}

function shareCell(share) {
  const span = document.createElement("span");
  const bar = document.createElement("span");
  bar.className = "bar";
  bar.style.width = `${Math.round(Number(share || 0) * 80)}px`;
  span.append(bar, percent(share));
  return span;
}

function sceneTraffic(s) {
  const rows = s.list().sort((a, b) => Number(b.impressions_share || 0) - Number(a.impressions_share || 0) || (a.scene < b.scene ? -1 : 1));
  fill("#scene-traffic", s, rows.map((r) => [r.scene, shareCell(r.impressions_share), shareCell(r.clicks_share), shareCell(r.gmv_share)]));
}

function ads(s) {
  const rows = s.list().sort(order(["rank", false]));
  fill("#ads", s, rows.map((r) => [r.rank, r.item_id, r.category_id, money(r.bid_cents), text(r.pctr), text(r.ecpm)]));
  const batch = s.lastBatch;
  if (batch) {
    const items = (sign) => new Set(batch.changes.filter((c) => Math.sign(c.diff) === sign).map((c) => c.row.item_id));
    const before = items(-1);
    const after = items(1);
    const added = [...after].filter((i) => !before.has(i));
    const removed = [...before].filter((i) => !after.has(i));
    refreshLine(batch.time, added, removed, [...after].filter((i) => before.has(i)).length);
  } else if (s.asOf !== null && !s.askedLast) {
    // Opened after the last refresh: the server tells how it changed the set.
    s.askedLast = true;
    fetch(`/v1/ads?as_of=${s.asOf}`, { cache: "no-store" })
      .then((r) => r.json())
      .then((a) => {
        const last = a.last_change;
        if (last && !s.lastBatch) refreshLine(last.time, last.added, last.removed, null);
      })
      .catch(() => {});
  }
}

function refreshLine(time, added, removed, moved) {
  const line = $("#ads-refresh");
  line.replaceChildren(
    `last refresh at ${when(time)}: `,
    Object.assign(document.createElement("span"), { className: "added", textContent: `+${added.length} in` }),
    " · ",
    Object.assign(document.createElement("span"), { className: "removed", textContent: `−${removed.length} out` }),
    moved === null ? "" : ` · ${moved} re-ranked`,
  );
  line.dataset.time = String(time);
  line.dataset.added = added.join(",");
  line.dataset.removed = removed.join(",");
}

// The charts: a line over the last HISTORY samples.
function plot(canvas, values, color) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  ctx.clearRect(0, 0, width, height);
  const max = Math.max(1, ...values.filter(Number.isFinite));
  ctx.strokeStyle = "#dde1e8";
  ctx.beginPath();
  ctx.moveTo(0, height - 0.5);
  ctx.lineTo(width, height - 0.5);
  ctx.stroke();
  ctx.fillStyle = "#6b7385";
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillText(`max ${Math.round(max).toLocaleString()}`, 4, 12);
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / Math.max(1, HISTORY - 1)) * width;
    const y = height - 4 - (Number.isFinite(v) ? v / max : 0) * (height - 20);
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

const samples = [];

async function poll() {
  try {
    const response = await fetch("/v1/status", { cache: "no-store" });
    const status = await response.json();
    const now = performance.now();
    const rows = status.input_rows.valid;
    const previous = samples[samples.length - 1];
    const rate = previous ? ((rows - previous.rows) * 1000) / Math.max(1, now - previous.at) : 0;
    samples.push({ at: now, rows, rate, lag: status.lag_event_ms });
    if (samples.length > HISTORY) samples.shift();
    $("#as-of").textContent = when(status.as_of);
    $("#input-rows").textContent = String(rows);
    $("#input-rows").dataset.value = String(rows);
    $("#rate").textContent = Math.round(rate).toLocaleString();
    $("#lag").textContent = `${status.lag_event_ms} ms`;
    $("#lag-wall").textContent = `${Number(status.lag_wall_seconds).toFixed(1)} s`;
    $("#bad-rows").textContent = `${status.input_rows.rejected} · ${status.input_rows.late}`;
    plot($("#rate-chart"), samples.map((s) => s.rate), "#d9480f");
    plot($("#lag-chart"), samples.map((s) => s.lag), "#1c7ed6");
  } catch (error) {
    setConnection(`status: ${error}`);
  }
}

// Subscribe to the panels' outputs that this run has.
const PANELS = [
  ["#top-items", "category_top_items", topItems],
  ["#top-categories", "category_stats", topCategories],
  ["#scene-traffic", "scene_traffic", sceneTraffic],
  ["#ads", "ads_curated", ads],
];

async function start() {
  let names = null;
  while (names === null) {
    try {
      const listing = await (await fetch("/v1/outputs", { cache: "no-store" })).json();
      names = new Set(listing.outputs.map((o) => o.name));
    } catch (error) {
      setConnection(`outputs: ${error}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  for (const [panel, output, draw] of PANELS) {
    if (names.has(output)) new Subscription(output, draw);
    else $(panel).querySelector(".as-of").textContent = `(${output} is not an output of this run)`;
  }
  poll();
  setInterval(poll, 1000);
}

start();
