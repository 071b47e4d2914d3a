// The dashboard's live view: server-sent events name the tasks that changed; their cards are
// fetched (rendered by the server) and put in their column. A card's title opens the task's
// detail (also rendered by the server) in a panel. No build step, no dependencies, and no
// inline script anywhere (the Content-Security-Policy forbids it).
"use strict";

const filters = new URLSearchParams(window.location.search);
const query = (extra) => {
  const params = new URLSearchParams(extra);
  for (const name of ["epic", "tag", "agent", "q"]) {
    if (filters.get(name)) params.set(name, filters.get(name));
  }
  return params.toString();
};

function say(text) {
  const message = document.getElementById("message");
  if (message) message.textContent = text;
}

function column(status) {
  return document.getElementById("col-" + status);
}

// Cards sit in id order; a card past the loaded part of a paged column waits for "more".
function place(card, status) {
  const col = column(status);
  if (!col) return;
  const list = col.querySelector(".cards");
  const id = card.dataset.id;
  const after = Array.from(list.children).find((c) => c.dataset.id > id);
  if (after) list.insertBefore(card, after);
  else if (!col.dataset.next) list.appendChild(card);
}

function fromHtml(html) {
  const holder = document.createElement("div");
  holder.innerHTML = html;
  return Array.from(holder.children);
}

function setCounts(counts) {
  for (const [status, n] of Object.entries(counts)) {
    const col = column(status);
    if (col) col.querySelector(".count").textContent = n;
  }
  const ready = document.querySelector("#col-pending .ready-count");
  if (ready && counts.ready !== undefined) ready.textContent = "(" + counts.ready + " ready)";
}

// The changed cards, rendered by the server: each old card goes, each new one is placed in
// its column (a task that no longer passes the filters just goes).
function show(ids, cards) {
  for (const id of ids) {
    const old = document.getElementById("card-" + id);
    if (old) old.remove();
  }
  for (const item of cards) {
    for (const card of fromHtml(item.html)) place(card, item.status);
  }
  tidy();
  tick();
}

// A paged column that its moves have thinned loads its next page; a column that keeps
// growing (done, on a board left open all day) keeps its first KEEP cards (or as many as
// "more" loaded) and pages the rest.
const PAGE = 50;
const KEEP = 200;
function tidy() {
  for (const col of document.querySelectorAll(".column")) {
    const list = col.querySelector(".cards");
    const button = col.querySelector("button.more");
    const keep = Number(col.dataset.keep || KEEP);
    if (list.children.length > keep) {
      while (list.children.length > keep) list.lastElementChild.remove();
      col.dataset.next = list.lastElementChild.dataset.id;
      button.hidden = false;
    } else if (col.dataset.next && list.children.length < PAGE / 2 && !col.dataset.loading) {
      more(button);
    }
  }
}

async function refresh(ids) {
  if (!ids.length) return;
  const answer = await fetch("/dashboard/api/cards?" + query({ ids: ids.join(",") }),
                             { credentials: "same-origin" });
  if (!answer.ok) return;
  show(ids, (await answer.json()).cards);
}

// A wait as people read it (the server's queue_figures.duration): 42s, 7m05s, 3h02m, 2d04h.
function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n) => String(n).padStart(2, "0");
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + two(s % 60) + "s";
  if (s < 86400) return Math.floor(s / 3600) + "h" + two(Math.floor((s % 3600) / 60)) + "m";
  return Math.floor(s / 86400) + "d" + two(Math.floor((s % 86400) / 3600)) + "h";
}

function tick() {
  const now = Date.now();
  // The merge queue's waits go on between its changes.
  for (const waited of document.querySelectorAll(".waited[data-since]")) {
    const since = Date.parse(waited.dataset.since);
    if (!Number.isNaN(since)) waited.textContent = duration((now - since) / 1000);
  }
  for (const lease of document.querySelectorAll(".lease[data-expires]")) {
    const left = Math.round((Date.parse(lease.dataset.expires) - now) / 1000);
    if (left <= 0) {
      lease.textContent = "lease expired";
      lease.classList.add("expired");
    } else {
      const m = Math.floor(left / 60);
      const s = String(left % 60).padStart(2, "0");
      lease.textContent = "lease " + m + ":" + s;
      lease.classList.remove("expired");
    }
  }
}

let source = null;
function connect() {
  const live = document.getElementById("live");
  source = new EventSource("/dashboard/events?" + query({ after: document.body.dataset.cursor }));
  source.addEventListener("open", () => {
    live.dataset.state = "open";
    live.textContent = "live";
  });
  source.addEventListener("tasks", (event) => {
    const data = JSON.parse(event.data);
    if (event.lastEventId) document.body.dataset.cursor = event.lastEventId;
    setCounts(data.counts);
    show(data.ids, data.cards);
    const panel = document.getElementById("panel");
    if (panel && !panel.hidden && data.ids.includes(panel.dataset.id)) openTask(panel.dataset.id);
  });
  source.addEventListener("reset", () => window.location.reload());
  source.addEventListener("tasks", () => viewChanged());
  // Usage, the monitor's ticks and autopilot rounds write no task event: their views are
  // named here when what they show changed.
  source.addEventListener("views", (event) => {
    const names = JSON.parse(event.data).views;
    if (names.includes(view)) viewChanged();
    const panel = document.getElementById("panel");
    if (names.includes("autopilot") && panel && !panel.hidden && panel.querySelector(".live-log")) {
      openTask(panel.dataset.id);
    }
  });
  source.addEventListener("error", () => {
    live.dataset.state = "closed";
    live.textContent = "reconnecting";
    // EventSource retries by itself unless the server refused it (e.g. 401): start over.
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
  });
}

async function more(button) {
  const col = button.closest(".column");
  col.dataset.loading = "1";
  try {
    const answer = await fetch("/dashboard/api/column?" +
                               query({ status: col.dataset.status, after: col.dataset.next }),
                               { credentials: "same-origin" });
    if (!answer.ok) return;
    const page = await answer.json();
    const list = col.querySelector(".cards");
    for (const card of fromHtml(page.html)) {
      if (!document.getElementById(card.id)) list.appendChild(card);
    }
    col.dataset.next = page.next || "";
    col.dataset.keep = Math.max(KEEP, list.children.length);
    button.hidden = !page.next;
    tick();
  } finally {
    delete col.dataset.loading;
  }
}

// Pause or resume an autopilot run (the Autopilot tab), as `wvo-mcp autopilot pause` does.
async function pilot(button) {
  const action = button.dataset.pilot;
  if (!window.confirm(button.textContent + " autopilot " + button.dataset.run + "?")) return;
  const answer = await fetch("/dashboard/api/autopilot/" + action, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-WVO-Action": "1" },
    body: JSON.stringify({ run: button.dataset.run }),
  });
  const result = await answer.json();
  say(answer.ok ? "asked the autopilot to " + action + "; it acts on its next round"
                : result.error);
  button.disabled = true;
}

// Quarantine a test, or take one out (the Autopilot tab's landing gate), as
// `wvo-mcp quarantine add|remove` does.
async function quarantine(button) {
  const action = button.dataset.quarantine;
  let body;
  if (action === "add") {
    const field = button.closest(".gate").querySelector(".quarantine-test");
    const test = field.value.trim();
    if (!test) { say("name the test, as its JUnit report names it"); return; }
    const note = window.prompt("Quarantine " + test + ": why?");
    if (!note) return;
    body = { test: test, note: note };
  } else {
    if (!window.confirm("Take " + button.dataset.test + " out of the quarantine?")) return;
    body = { test: button.dataset.test };
  }
  const answer = await fetch("/dashboard/api/quarantine/" + action, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-WVO-Action": "1" },
    body: JSON.stringify(body),
  });
  const result = await answer.json();
  say(answer.ok ? result.message : result.error);
  if (answer.ok) showView("autopilot");
}

// What each action asks the person for first: a note it needs, or one it may take.
const ASKS = {
  reject: [true, "Reject {id}: why?"],
  tell: [true, "Tell the holder of {id}:"],
  answer: [true, "Answer the question on {id}:"],
  pause: [false, "Pause {id}: why? (optional)"],
};

async function act(button) {
  const card = button.closest(".card, .detail");
  const id = card.dataset.id;
  const action = button.dataset.action;
  const body = {};
  const ask = ASKS[action];
  if (ask) {
    const note = window.prompt(ask[1].replace("{id}", id));
    if (note === null || (ask[0] && !note)) return;
    if (note) body.note = note;
  } else if (!window.confirm(button.textContent + " " + id + "?")) {
    return;
  }
  const answer = await fetch("/dashboard/api/tasks/" + encodeURIComponent(id) + "/" + action, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-WVO-Action": "1" },
    body: JSON.stringify(body),
  });
  const result = await answer.json();
  say(answer.ok ? id + ": " + (result.status || result.message) : result.error);
  refresh([id]);
  viewChanged();
  const panel = document.getElementById("panel");
  if (panel && !panel.hidden && panel.dataset.id === id) openTask(id);
}

const taskPath = (id) => "/dashboard/api/tasks/" + encodeURIComponent(id);

async function openTask(id) {
  const panel = document.getElementById("panel");
  const answer = await fetch(taskPath(id), { credentials: "same-origin" });
  const found = await answer.json();
  if (!answer.ok) {
    say(found.error);
    return;
  }
  panel.replaceChildren(...fromHtml(found.html));
  panel.dataset.id = id;
  panel.hidden = false;
  const close = panel.querySelector("button.close");
  if (close) close.hidden = false;
}

async function showDiff(button) {
  const detail = button.closest(".detail");
  const out = button.parentElement.querySelector(".diff-out");
  const answer = await fetch(taskPath(detail.dataset.id) + "/checkpoints/" +
                             button.dataset.seq + "/diff", { credentials: "same-origin" });
  const found = await answer.json();
  if (answer.ok) out.replaceChildren(...fromHtml(found.html));
  else out.textContent = found.error;
  button.hidden = true;
}

// The agents, budgets and health views: HTML fragments rendered by the server, fetched when
// their tab is opened and again (at most once a second) when the live stream reports a change.
let view = "board";
let viewFetched = 0;
let viewTimer = null;

async function loadView() {
  viewTimer = null;
  if (view === "board") return;
  viewFetched = Date.now();
  const name = view;
  const answer = await fetch("/dashboard/api/views/" + name, { credentials: "same-origin" });
  const found = await answer.json();
  const target = document.getElementById("view-" + name);
  if (!target) return;
  if (answer.ok) target.replaceChildren(...fromHtml(found.html));
  else say(found.error);
}

function viewChanged() {
  if (view === "board" || viewTimer !== null) return;
  const wait = Math.max(0, 1000 - (Date.now() - viewFetched));
  viewTimer = setTimeout(loadView, wait);
}

function showView(name) {
  view = name;
  for (const tab of document.querySelectorAll("#tabs .tab")) {
    tab.setAttribute("aria-selected", tab.dataset.view === name ? "true" : "false");
  }
  const board = document.getElementById("board");
  if (board) board.hidden = name !== "board";
  for (const section of document.querySelectorAll("section.view")) {
    section.hidden = section.id !== "view-" + name;
  }
  if (viewTimer !== null) clearTimeout(viewTimer);
  loadView();
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a.open");
  const panel = document.getElementById("panel");
  if (link && panel && !event.ctrlKey && !event.metaKey && !event.shiftKey) {
    event.preventDefault();
    openTask(decodeURIComponent(link.getAttribute("href").split("/").pop()));
    return;
  }
  const button = event.target.closest("button");
  if (!button) return;
  if (button.classList.contains("tab")) showView(button.dataset.view);
  else if (button.classList.contains("more")) more(button);
  else if (button.classList.contains("diff")) showDiff(button);
  else if (button.classList.contains("close")) panel.hidden = true;
  else if (button.dataset.pilot) pilot(button);
  else if (button.dataset.quarantine) quarantine(button);
  else if (button.dataset.action) act(button);
});

if (document.getElementById("board")) {
  setInterval(tick, 1000);
  tick();
  connect();
}
