// LlamaBoard for lfl: the page's logic. Talks to the board's JSON API
// (stdlib/lfl/board/init.lua, M.ROUTES); streams (run events, chat replies) are
// read with fetch so the access token can ride in the Authorization header.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  meta: null, lang: "en", strings: {}, run: null, points: [], evalPoints: [], events: null,
  history: [], preview: {page: 1}, runs: [],
};

// ---------------------------------------------------------------- API
function token() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) sessionStorage.setItem("lfl_board_token", decodeURIComponent(m[1]));
  return sessionStorage.getItem("lfl_board_token");
}
function headers(json) {
  const h = {};
  const t = token();
  if (t) h["Authorization"] = "Bearer " + t;
  if (json) h["Content-Type"] = "application/json";
  return h;
}
async function api(path, body) {
  const opts = body === undefined ? {headers: headers(false)} :
    {method: "POST", headers: headers(true), body: JSON.stringify(body)};
  const r = await fetch(path, opts);
  let data;
  try { data = await r.json(); } catch (e) { data = {error: "HTTP " + r.status}; }
  if (r.status === 401) {
    const t = prompt(tr("token_prompt"));
    if (t) { sessionStorage.setItem("lfl_board_token", t); return api(path, body); }
  }
  if (!r.ok) throw new Error(data.error || ("HTTP " + r.status));
  return data;
}
// server-sent events over fetch: calls onEvent(name, data) per event
async function stream(path, body, onEvent, signal) {
  const opts = body === undefined ? {headers: headers(false), signal} :
    {method: "POST", headers: headers(true), body: JSON.stringify(body), signal};
  const r = await fetch(path, opts);
  if (!r.ok) {
    let msg = "HTTP " + r.status;
    try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
    throw new Error(msg);
  }
  const reader = r.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buf += dec.decode(value, {stream: true});
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let name = "message", data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) onEvent(name, data.join("\n"));
    }
  }
}

// ---------------------------------------------------------------- i18n
function tr(key) { return state.strings[key] || key; }
async function setLang(code) {
  const s = await api("/locales/" + code + ".json");
  state.strings = s;
  state.lang = code;
  localStorage.setItem("lfl_board_lang", code);
  document.documentElement.lang = code;
  document.querySelectorAll("[data-i18n]").forEach((el) => {
    const k = el.getAttribute("data-i18n");
    if (s[k]) el.textContent = s[k];
  });
  document.querySelectorAll("[data-i18n-ph]").forEach((el) => {
    const k = el.getAttribute("data-i18n-ph");
    if (s[k]) el.placeholder = s[k];
  });
  document.title = tr("title") + " · lfl";
  $("lang").value = code;
  for (const id of ["st_status", "eval_status", "export_status"]) {
    const st = $(id).dataset.status;
    if (st) $(id).textContent = tr("status_" + st);
  }
  document.querySelectorAll("[data-label-key]").forEach((el) => {
    el.textContent = tr(el.dataset.labelKey) + (el.dataset.labelRest || "");
  });
  if (state.meta) {
    const keep = $("model_select").value;
    fillSelect($("model_select"), modelItems(), keep);
    renderRuns();
    fillAdapters();
  }
  drawChart();
}

// ---------------------------------------------------------------- form
function fillSelect(sel, items, value) {
  sel.innerHTML = "";
  for (const it of items) {
    const o = document.createElement("option");
    if (typeof it === "string") { o.value = it; o.textContent = it; } else { o.value = it.value; o.textContent = it.label; }
    sel.appendChild(o);
  }
  if (value !== undefined) sel.value = value;
}

function visible(el) {
  for (let e = el; e; e = e.parentElement) if (e.classList && e.classList.contains("hidden")) return false;
  return true;
}

// the recipe keys of the form (only the visible sections; empty fields left out)
function collectConfig() {
  const cfg = {};
  cfg.model_name_or_path = $("model_path").value.trim();
  cfg.template = $("template").value;
  cfg.finetuning_type = $("finetuning_type").value;
  document.querySelectorAll("#panel_train [data-key]").forEach((el) => {
    if (!visible(el)) return;
    const k = el.getAttribute("data-key"), kind = el.getAttribute("data-kind");
    if (kind === "bool") { if (el.checked) cfg[k] = true; return; }
    const v = el.value.trim();
    if (v === "") return;
    if (kind === "number" || kind === "int") {
      const n = Number(v);
      if (el.getAttribute("data-zero-none") && n === 0) return;
      cfg[k] = isNaN(n) ? v : n; // a bad number reaches lfl.args, which names it
    } else cfg[k] = v;
  });
  const ds = [...document.querySelectorAll("#dataset_list input:checked")].map((x) => x.value);
  if (ds.length) cfg.dataset = ds.join(",");
  for (const k of Object.keys(cfg)) if (cfg[k] === "") delete cfg[k];
  return cfg;
}

function applyConfig(cfg) {
  if (cfg.model_name_or_path) { $("model_path").value = cfg.model_name_or_path; $("model_select").value = cfg.model_name_or_path; }
  if (cfg.template) $("template").value = cfg.template;
  if (cfg.finetuning_type) $("finetuning_type").value = cfg.finetuning_type;
  document.querySelectorAll("#panel_train [data-key]").forEach((el) => {
    const k = el.getAttribute("data-key");
    if (!(k in cfg)) return;
    if (el.getAttribute("data-kind") === "bool") el.checked = !!cfg[k]; else el.value = cfg[k];
  });
  const want = new Set(String(cfg.dataset || "").split(",").map((s) => s.trim()));
  document.querySelectorAll("#dataset_list input").forEach((x) => { x.checked = want.has(x.value); });
  updateSections();
}

function updateSections() {
  const ft = $("finetuning_type").value, stage = $("stage").value;
  document.querySelectorAll("[data-show-ft]").forEach((el) => el.classList.toggle("hidden", el.getAttribute("data-show-ft") !== ft));
  document.querySelectorAll("[data-show-stage]").forEach((el) =>
    el.classList.toggle("hidden", !el.getAttribute("data-show-stage").split(",").includes(stage)));
  filterDatasets();
}

// sets el's text to tr(key) + rest, and remembers both so a language switch re-renders it
function labelled(el, key, rest) {
  el.dataset.labelKey = key;
  el.dataset.labelRest = rest || "";
  el.textContent = tr(key) + (rest || "");
}
function unlabel(el) { delete el.dataset.labelKey; delete el.dataset.labelRest; }
function showMsg(text, kind, key) {
  const m = $("train_msg");
  if (key) labelled(m, key, text); else { unlabel(m); m.textContent = text; }
  m.className = "msg " + (kind || "error");
}

// ---------------------------------------------------------------- datasets
const RANKING_STAGES = ["rm", "dpo", "orpo", "simpo", "kto"];
async function loadDatasets() {
  const box = $("dataset_list");
  box.innerHTML = "";
  try {
    const r = await api("/api/datasets", {dataset_dir: $("dataset_dir").value});
    for (const d of r.datasets) {
      const l = document.createElement("label");
      l.className = "check";
      l.dataset.ranking = d.ranking ? "1" : "0";
      l.dataset.kto = d.kto ? "1" : "0";
      const c = document.createElement("input");
      c.type = "checkbox"; c.value = d.name; c.id = "ds_" + d.name;
      l.appendChild(c);
      l.appendChild(document.createTextNode(" " + d.name));
      box.appendChild(l);
    }
    filterDatasets();
    fillEvalDatasets();
  } catch (e) { box.textContent = e.message; }
}
// LlamaBoard lists ranking datasets for the pairwise stages, the others for sft/pt/ppo
function filterDatasets() {
  const ranking = RANKING_STAGES.includes($("stage").value);
  const kto = $("stage").value === "kto";
  document.querySelectorAll("#dataset_list label").forEach((l) => {
    const show = kto ? (l.dataset.kto === "1" || l.dataset.ranking === "1") : (l.dataset.ranking === "1") === ranking;
    l.classList.toggle("hidden", !show);
    if (!show) l.querySelector("input").checked = false;
  });
}

async function preview(page) {
  const cfg = collectConfig();
  const ds = (cfg.dataset || "").split(",")[0];
  if (!ds) { showMsg("", "error", "err_no_dataset"); return; }
  try {
    const r = await api("/api/datasets/preview", {dataset: ds, page, size: 2, config: cfg});
    state.preview = {page: r.page, total: r.total};
    $("preview_title").textContent = `${r.dataset} · ${tr("template")}: ${r.template} · ${tr("page")} ${r.page} / ${Math.max(1, Math.ceil(r.total / 2))}`;
    const body = $("preview_body");
    body.innerHTML = "";
    for (const ex of r.examples) {
      const div = document.createElement("div");
      div.className = "example";
      const h = document.createElement("div");
      h.className = "example-head";
      h.textContent = `#${ex.index} · ${ex.tokens} ${tr("tokens")} · ${ex.trained_tokens} ${tr("trained")}`;
      div.appendChild(h);
      const pre = document.createElement("pre");
      for (const s of ex.segments) {
        const span = document.createElement("span");
        span.className = s.trained ? "tok-trained" : "tok-masked";
        span.textContent = s.text;
        pre.appendChild(span);
      }
      div.appendChild(pre);
      body.appendChild(div);
    }
    $("preview_box").classList.remove("hidden");
  } catch (e) { showMsg(e.message); }
}

// ---------------------------------------------------------------- model
function modelItems() {
  const items = [];
  for (const m of state.meta.local_models) items.push({value: m.path, label: tr("local") + " · " + m.name, template: m.template});
  for (const f of state.meta.families)
    for (const c of f.checkpoints) items.push({value: c.hub, label: c.name, template: c.template});
  return items;
}
function onModelChange() {
  const v = $("model_select").value;
  const it = modelItems().find((x) => x.value === v);
  $("model_path").value = v;
  if (it && it.template) $("template").value = it.template;
}

// ---------------------------------------------------------------- runs
function fmtNum(x, d) { return typeof x === "number" ? x.toFixed(d) : "-"; }

async function startRun() {
  $("train_msg").className = "msg hidden";
  $("cmd_box").classList.add("hidden");
  const cfg = collectConfig();
  try {
    const r = await api("/api/runs/start", {config: cfg});
    showMsg(" " + r.output_dir, "ok", "started");
    follow(r);
    refreshRuns();
  } catch (e) { showMsg(e.message); }
}

function follow(run) {
  if (state.events) state.events.abort();
  state.run = run;
  state.points = []; state.evalPoints = [];
  $("log_box").textContent = "";
  drawChart();
  const ctl = new AbortController();
  state.events = ctl;
  $("stop_btn").disabled = run.status !== "running";
  stream(`/api/runs/${run.id}/events`, undefined, (name, data) => {
    if (name === "log") onLog(JSON.parse(data));
    else if (name === "out") {
      const box = $("log_box");
      box.textContent += JSON.parse(data).text;
      if (box.textContent.length > 200000) box.textContent = box.textContent.slice(-150000);
      box.scrollTop = box.scrollHeight;
    } else if (name === "status" || name === "end") onStatus(JSON.parse(data));
  }, ctl.signal).catch((e) => { if (e.name !== "AbortError") showMsg(e.message); });
}

function onLog(rec) {
  if (typeof rec.loss === "number") state.points.push([rec.current_steps, rec.loss]);
  if (typeof rec.eval_loss === "number") state.evalPoints.push([rec.current_steps, rec.eval_loss]);
  if (rec.total_steps) {
    $("st_step").textContent = `${rec.current_steps} / ${rec.total_steps}`;
    $("progress_bar").style.width = (100 * rec.current_steps / rec.total_steps).toFixed(1) + "%";
  }
  if (typeof rec.loss === "number") $("st_loss").textContent = fmtNum(rec.loss, 4);
  if (typeof rec.eval_loss === "number") $("st_eval").textContent = fmtNum(rec.eval_loss, 4);
  if (typeof rec.tokens_per_second === "number") $("st_tps").textContent = fmtNum(rec.tokens_per_second, 0);
  if (rec.remaining_time) $("st_eta").textContent = rec.remaining_time;
  drawChart();
}

function onStatus(info) {
  $("st_status").textContent = tr("status_" + info.status);
  $("st_status").dataset.status = info.status;
  if (typeof info.memory_mb === "number") $("st_mem").textContent = info.memory_mb.toFixed(0) + " MB";
  $("stop_btn").disabled = info.status !== "running";
  if (state.run && state.run.id === info.id) state.run = info;
  if (info.status !== "running") refreshRuns();
}

async function stopRun() {
  if (!state.run) return;
  try { await api(`/api/runs/${state.run.id}/stop`, {}); } catch (e) { showMsg(e.message); }
}

async function refreshRuns() {
  try {
    const r = await api("/api/runs");
    state.runs = r.runs;
    state.adapters = (await api("/api/adapters")).adapters;
    renderRuns();
    fillAdapters();
  } catch (e) { showMsg(e.message); }
}
function renderRuns() {
  const tb = document.querySelector("#runs_table tbody");
  tb.innerHTML = "";
  for (const run of state.runs) {
    const row = document.createElement("tr");
    const cells = [String(run.id), tr("kind_" + run.kind), tr("status_" + run.status), run.output_dir,
      String((run.checkpoints || []).length)];
    for (const c of cells) { const td = document.createElement("td"); td.textContent = c; row.appendChild(td); }
    const td = document.createElement("td");
    const b = document.createElement("button");
    const tab = {predict: "eval", export: "export"}[run.kind];
    b.textContent = tr("view");
    b.onclick = () => { if (tab) { $("tab_" + tab).click(); followTab(run, tab); } else follow(run); };
    td.appendChild(b); row.appendChild(td);
    tb.appendChild(row);
  }
}

// ---------------------------------------------------------------- chart
function drawChart() {
  const cv = $("loss_chart");
  const ctx = cv.getContext("2d");
  const W = cv.width, H = cv.height, L = 48, R = 12, T = 24, B = 28;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  ctx.fillStyle = "#333"; ctx.font = "13px sans-serif";
  ctx.fillText(tr("loss_curve"), L, 16);
  cv.dataset.points = state.points.length;
  cv.dataset.evalPoints = state.evalPoints.length;
  const all = state.points.concat(state.evalPoints);
  ctx.strokeStyle = "#999"; ctx.beginPath(); ctx.moveTo(L, T); ctx.lineTo(L, H - B); ctx.lineTo(W - R, H - B); ctx.stroke();
  if (!all.length) return;
  let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
  let y0 = Math.min(...all.map((p) => p[1])), y1 = Math.max(...all.map((p) => p[1]));
  if (x1 === x0) x1 = x0 + 1;
  if (y1 - y0 < 1e-6) { y0 -= 0.5; y1 += 0.5; }
  const px = (x) => L + (x - x0) / (x1 - x0) * (W - L - R), py = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  ctx.fillStyle = "#555"; ctx.font = "11px sans-serif";
  for (let i = 0; i <= 4; i++) {
    const y = y0 + (y1 - y0) * i / 4;
    ctx.fillText(y.toFixed(2), 4, py(y) + 4);
    ctx.strokeStyle = "#eee"; ctx.beginPath(); ctx.moveTo(L, py(y)); ctx.lineTo(W - R, py(y)); ctx.stroke();
  }
  ctx.fillText(String(x0), L, H - 10); ctx.fillText(String(x1), W - R - 20, H - 10);
  ctx.fillText(tr("step"), (W - L) / 2, H - 10);
  const line = (pts, color) => {
    ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 2; ctx.beginPath();
    pts.forEach((p, i) => (i ? ctx.lineTo(px(p[0]), py(p[1])) : ctx.moveTo(px(p[0]), py(p[1]))));
    ctx.stroke();
    for (const p of pts) { ctx.beginPath(); ctx.arc(px(p[0]), py(p[1]), 3, 0, 7); ctx.fill(); }
    ctx.lineWidth = 1;
  };
  line(state.points, "#2563eb");
  if (state.evalPoints.length) line(state.evalPoints, "#ea580c");
  ctx.fillStyle = "#2563eb"; ctx.fillText("— " + tr("loss"), W - 150, 16);
  ctx.fillStyle = "#ea580c"; ctx.fillText("— " + tr("eval_loss"), W - 90, 16);
}

// ---------------------------------------------------------------- configs
async function saveConfig(format) {
  try {
    const r = await api("/api/configs/save", {name: $("config_name").value, format, config: collectConfig()});
    showMsg(" " + r.path, "ok", "saved");
    refreshConfigs();
  } catch (e) { showMsg(e.message); }
}
async function refreshConfigs() {
  try { const r = await api("/api/configs"); fillSelect($("config_list"), r.configs); } catch (e) { /* shown elsewhere */ }
}
async function loadConfig() {
  const name = $("config_list").value;
  if (!name) return;
  try { const r = await api("/api/configs/load", {name}); applyConfig(r.config); showMsg(" " + r.path, "ok", "loaded"); }
  catch (e) { showMsg(e.message); }
}
async function previewCommand() {
  try {
    const r = await api("/api/command", {config: collectConfig()});
    const box = $("cmd_box");
    box.textContent = `# ${r.command}\n# training_args.yaml\n${r.yaml}\n-- recipe.lua\n${r.lua}`;
    box.classList.remove("hidden");
    $("train_msg").className = "msg hidden";
  } catch (e) { showMsg(e.message); }
}

// ---------------------------------------------------------------- chat
function fillAdapters() {
  const items = [{value: "", label: tr("none")}];
  const seen = new Set();
  for (const run of state.runs) for (const c of run.checkpoints || []) { seen.add(c); items.push({value: c, label: c}); }
  for (const c of state.adapters || []) if (!seen.has(c)) items.push({value: c, label: c});
  const key = items.map((x) => x.value).join("\n");
  document.querySelectorAll(".adapter-select").forEach((sel) => {
    if (sel.dataset.key === key && sel.options.length) return; // unchanged: keep the options (and the choice)
    sel.dataset.key = key;
    const keep = sel.value;
    fillSelect(sel, items);
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  });
}
async function chatLoad() {
  labelled($("chat_status"), "loading");
  try {
    const r = await api("/api/chat/load", {model: $("model_path").value, adapter: $("chat_adapter").value,
      template: $("template").value});
    labelled($("chat_status"), "loaded", `: ${r.model}${r.adapter ? " + " + r.adapter : ""} (${r.template})`);
    $("chat_status").dataset.loaded = "1";
  } catch (e) { unlabel($("chat_status")); $("chat_status").textContent = e.message; $("chat_status").dataset.loaded = "0"; }
}
async function chatUnload() {
  await api("/api/chat/unload", {});
  labelled($("chat_status"), "unloaded");
  $("chat_status").dataset.loaded = "0";
}
function bubble(role, text) {
  const d = document.createElement("div");
  d.className = "bubble " + role;
  d.textContent = text;
  $("chat_box").appendChild(d);
  $("chat_box").scrollTop = $("chat_box").scrollHeight;
  return d;
}
async function chatSend() {
  const text = $("chat_input").value.trim();
  if (!text) return;
  $("chat_input").value = "";
  state.history.push({role: "user", content: text});
  bubble("user", text);
  const out = bubble("assistant", "");
  out.dataset.done = "0";
  const num = (id) => { const v = $(id).value.trim(); return v === "" ? undefined : Number(v); };
  let reply = "";
  $("chat_send").disabled = true;
  try {
    await stream("/api/chat/stream", {messages: state.history, system: $("chat_system").value,
      max_new_tokens: num("chat_max_new_tokens"), temperature: num("chat_temperature"), top_p: num("chat_top_p"),
      top_k: num("chat_top_k")}, (name, data) => {
      if (data === "[DONE]") return;
      const c = JSON.parse(data);
      if (c.error) { out.textContent = c.error.message || String(c.error); return; }
      const d = c.choices && c.choices[0] && c.choices[0].delta;
      if (d && d.content) { reply += d.content; out.textContent = reply; out.dataset.chunks = String(Number(out.dataset.chunks || 0) + 1); }
    });
    state.history.push({role: "assistant", content: reply});
  } catch (e) { out.textContent = e.message; out.classList.add("error"); }
  out.dataset.done = "1";
  $("chat_send").disabled = false;
}

// ---------------------------------------------------------------- predict / export
// the model settings of the top bar, plus the tab's own fields (data-ekey / data-xkey)
function tabConfig(attr, adapterId) {
  const cfg = {model_name_or_path: $("model_path").value.trim(), template: $("template").value,
    finetuning_type: $("finetuning_type").value};
  const ad = $(adapterId).value;
  if (ad) cfg.adapter_name_or_path = ad;
  document.querySelectorAll(`[${attr}]`).forEach((el) => {
    const k = el.getAttribute(attr), kind = el.getAttribute("data-kind"), v = el.value.trim();
    if (v === "") return;
    cfg[k] = (kind === "number" || kind === "int") && !isNaN(Number(v)) ? Number(v) : v;
  });
  return cfg;
}
function evalConfig() {
  const cfg = tabConfig("data-ekey", "eval_adapter");
  cfg.stage = $("stage").value;
  cfg.dataset_dir = $("dataset_dir").value;
  const ds = [...document.querySelectorAll("#eval_dataset_list input:checked")].map((x) => x.value);
  if (ds.length) cfg.eval_dataset = ds.join(",");
  return cfg;
}
function tabMsg(prefix, text, kind, key) {
  const m = $(prefix + "_msg");
  if (key) labelled(m, key, text); else { unlabel(m); m.textContent = text; }
  m.className = "msg " + (kind || "error");
}
// follows a predict or export run in its tab: log, status, then its results
function followTab(run, prefix) {
  const ctl = new AbortController();
  if (state["events_" + prefix]) state["events_" + prefix].abort();
  state["events_" + prefix] = ctl;
  state["run_" + prefix] = run;
  $(prefix + "_log").textContent = "";
  $(prefix + "_results").textContent = "";
  stream(`/api/runs/${run.id}/events`, undefined, (name, data) => {
    if (name === "out") {
      const box = $(prefix + "_log");
      box.textContent += JSON.parse(data).text;
      box.scrollTop = box.scrollHeight;
    } else if (name === "status" || name === "end") {
      const info = JSON.parse(data);
      $(prefix + "_status").textContent = tr("status_" + info.status);
      $(prefix + "_status").dataset.status = info.status;
      if ($(prefix + "_stop")) $(prefix + "_stop").disabled = info.status !== "running";
      if (info.results) $(prefix + "_results").textContent = JSON.stringify(info.results, null, 2);
    }
  }, ctl.signal).catch((e) => { if (e.name !== "AbortError") tabMsg(prefix, e.message); });
}
async function startTab(prefix, kind, config) {
  $(prefix + "_msg").className = "msg hidden";
  try {
    const r = await api("/api/runs/start", {kind, config});
    tabMsg(prefix, " " + r.output_dir, "ok", "started");
    followTab(r, prefix);
    refreshRuns();
  } catch (e) { tabMsg(prefix, e.message); }
}
async function evalCommand() {
  try {
    const r = await api("/api/command", {kind: "predict", config: evalConfig()});
    $("eval_cmd_box").textContent = `# ${r.command}\n${r.yaml}`;
    $("eval_cmd_box").classList.remove("hidden");
    $("eval_msg").className = "msg hidden";
  } catch (e) { tabMsg("eval", e.message); }
}
function fillEvalDatasets() {
  const box = $("eval_dataset_list");
  box.innerHTML = "";
  document.querySelectorAll("#dataset_list label").forEach((l) => {
    const c = l.cloneNode(true);
    const input = c.querySelector("input");
    input.id = "eval_ds_" + input.value;
    input.checked = false;
    c.classList.remove("hidden");
    if (l.dataset.ranking === "1") return; // generation compares with single answers
    box.appendChild(c);
  });
}

// ---------------------------------------------------------------- start
async function init() {
  token();
  const meta = await api("/api/meta");
  state.meta = meta;
  fillSelect($("lang"), meta.languages.map((l) => ({value: l.code, label: l.name})));
  fillSelect($("model_select"), modelItems());
  fillSelect($("template"), meta.templates);
  fillSelect($("finetuning_type"), meta.finetuning_types, meta.defaults.finetuning_type);
  fillSelect($("stage"), meta.stages, meta.defaults.stage);
  fillSelect($("compute_type"), meta.compute_types, meta.defaults.compute_type);
  fillSelect($("lr_scheduler_type"), meta.schedulers, meta.defaults.lr_scheduler_type);
  fillSelect($("pref_loss"), meta.pref_losses, meta.defaults.pref_loss);
  document.querySelectorAll("#panel_train [data-key]").forEach((el) => {
    const k = el.getAttribute("data-key");
    if (!(k in meta.defaults)) return;
    if (el.getAttribute("data-kind") === "bool") el.checked = !!meta.defaults[k]; else el.value = meta.defaults[k];
  });
  $("dataset_dir").value = meta.dataset_dir;
  $("export_dir").value = meta.output_root + "/exported";
  onModelChange();
  document.querySelectorAll(".tab").forEach((b) => b.onclick = () => {
    document.querySelectorAll(".tab").forEach((x) => x.classList.toggle("active", x === b));
    document.querySelectorAll(".panel").forEach((p) => p.classList.toggle("hidden", p.id !== "panel_" + b.dataset.tab));
    if (b.dataset.tab !== "train") refreshRuns();
  });
  $("lang").onchange = () => setLang($("lang").value);
  $("model_select").onchange = onModelChange;
  $("finetuning_type").onchange = updateSections;
  $("stage").onchange = updateSections;
  $("dataset_dir").onchange = loadDatasets;
  $("preview_btn").onclick = () => preview(1);
  $("preview_prev").onclick = () => preview(Math.max(1, state.preview.page - 1));
  $("preview_next").onclick = () => preview(state.preview.page + 1);
  $("preview_close").onclick = () => $("preview_box").classList.add("hidden");
  $("start_btn").onclick = startRun;
  $("stop_btn").onclick = stopRun;
  $("cmd_btn").onclick = previewCommand;
  $("save_yaml").onclick = () => saveConfig("yaml");
  $("save_lua").onclick = () => saveConfig("lua");
  $("load_config").onclick = loadConfig;
  $("chat_load").onclick = chatLoad;
  if (meta.chat_only) {
    // lfl webchat: the chat of the model it was started with, nothing else
    document.querySelectorAll(".tab").forEach((b) => { if (b.dataset.tab !== "chat") b.classList.add("hidden"); });
    $("tab_chat").click();
    $("chat_load").classList.add("hidden");
    $("chat_unload").classList.add("hidden");
    if (meta.chat) showMsg(" " + meta.chat.model + " (" + meta.chat.template + ")", "ok", "loaded");
  }
  $("eval_start").onclick = () => startTab("eval", "predict", evalConfig());
  $("eval_stop").onclick = async () => {
    const r = state.run_eval;
    if (r) { try { await api(`/api/runs/${r.id}/stop`, {}); } catch (e) { tabMsg("eval", e.message); } }
  };
  $("eval_cmd_btn").onclick = evalCommand;
  $("export_start").onclick = () => startTab("export", "export", tabConfig("data-xkey", "export_adapter"));
  $("chat_unload").onclick = chatUnload;
  $("chat_send").onclick = chatSend;
  $("chat_clear").onclick = () => { state.history = []; $("chat_box").innerHTML = ""; };
  $("chat_input").onkeydown = (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); chatSend(); } };
  const saved = localStorage.getItem("lfl_board_lang");
  const want = saved || (navigator.language || "en").slice(0, 2);
  await setLang(meta.languages.some((l) => l.code === want) ? want : "en");
  updateSections();
  await loadDatasets();
  refreshConfigs();
  refreshRuns();
  document.body.dataset.ready = "1";
}
init().catch((e) => { document.body.dataset.ready = "error"; showMsg(e.message); });
