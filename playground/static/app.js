// The playground page: renders what /ui/state says the current person sees, and sends what they do.
// Plain JavaScript, no build step, nothing fetched from outside this machine.
"use strict";

// `screenId` names this page load: a modal opened here is shown here only, and is gone after a reload, as in Slack.
const screenId = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(16).slice(2)}`;
const state = { me: "U0ALICE", channel: "C0OPS", view: null, shown: null, latest: {}, openThreads: new Set(),
  channelsShown: null, demoShown: null };
const $ = (id) => document.getElementById(id);

// What mrkdwn.js needs to know about this workspace and this reader.
function context() {
  const v = state.view || {};
  return { names: v.names || {}, channels: Object.fromEntries((v.channels || []).map((c) => [c.id, c.name])), tz: readerZone() };
}

function readerZone() {
  const me = ((state.view && state.view.people) || []).find((p) => p.id === state.me);
  return me && me.tz ? me.tz : undefined;
}

function text(obj) {
  if (!obj) return "";
  return obj.type === "mrkdwn" ? mrkdwn(obj.text, context()) : (obj.emoji === false ? esc(obj.text) : emojify(esc(obj.text)));
}

function element(el, message) {
  const node = document.createElement("span");
  if (el.type === "button") {
    const button = document.createElement("button");
    button.className = `bk ${el.style || ""}`;
    button.innerHTML = text(el.text);
    button.onclick = () => {
      if (el.confirm && !window.confirm(`${el.confirm.title.text}\n\n${el.confirm.text.text}`)) return;
      press(message, el);
    };
    node.appendChild(button);
  } else if (el.type === "static_select" || el.type === "overflow") {
    const select = document.createElement("select");
    select.innerHTML = `<option value="">${el.type === "overflow" ? "⋯" : esc(el.placeholder ? el.placeholder.text : "Choose")}</option>` +
      el.options.map((o) => `<option value="${esc(o.value)}">${esc(o.text.text)}</option>`).join("");
    select.onchange = () => {
      const option = el.options.find((o) => o.value === select.value);
      if (option) press(message, { action_id: el.action_id, type: el.type, selected_option: option });
    };
    node.appendChild(select);
  } else if (el.type === "image") {
    node.innerHTML = `<img src="${esc(el.image_url)}" alt="${esc(el.alt_text)}" width="24">`;
  } else if (el.type === "datepicker") {
    const input = document.createElement("input");
    input.type = "date";
    input.value = el.initial_date || "";
    input.onchange = () => press(message, { action_id: el.action_id, type: "datepicker", selected_date: input.value });
    node.appendChild(input);
  } else if (el.type === "users_select" || el.type === "channels_select") {
    const select = document.createElement("select");
    const options = el.type === "users_select" ? state.view.people.map((p) => [p.id, p.name]) : state.view.channels.map((c) => [c.id, `#${c.name}`]);
    select.innerHTML = `<option value="">${esc(el.placeholder ? el.placeholder.text : "Choose")}</option>` + options.map(([v, t]) => `<option value="${esc(v)}">${esc(t)}</option>`).join("");
    const key = el.type === "users_select" ? "selected_user" : "selected_channel";
    select.onchange = () => press(message, { action_id: el.action_id, type: el.type, [key]: select.value });
    node.appendChild(select);
  } else {
    node.innerHTML = text(el);
  }
  return node;
}

function block(b, message) {
  const div = document.createElement("div");
  div.className = `block ${b.type}`;
  if (b.type === "header") div.innerHTML = text(b.text);
  else if (b.type === "divider") div.innerHTML = "";
  else if (b.type === "section") {
    const body = document.createElement("div");
    body.className = "text";
    body.innerHTML = text(b.text);
    if (b.fields) body.innerHTML += `<div class="fields">${b.fields.map((f) => `<div>${text(f)}</div>`).join("")}</div>`;
    div.appendChild(body);
    if (b.accessory) div.appendChild(element(b.accessory, message));
  } else if (b.type === "context") {
    b.elements.forEach((e) => div.appendChild(element(e, message)));
  } else if (b.type === "actions") {
    b.elements.forEach((e) => div.appendChild(element(e, message)));
  } else if (b.type === "image") {
    div.innerHTML = `${b.title ? `<div>${text(b.title)}</div>` : ""}<img src="${esc(b.image_url)}" alt="${esc(b.alt_text)}" style="max-width:360px">`;
  } else if (b.type === "rich_text") {
    div.innerHTML = (b.elements || []).map((section) => (section.elements || []).map((e) =>
      e.type === "text" ? (e.style && e.style.bold ? `<b>${esc(e.text)}</b>` : esc(e.text)) :
      e.type === "link" ? `<a href="${esc(e.url)}">${esc(e.text || e.url)}</a>` :
      e.type === "user" ? `<span class="mention">@${esc((state.view.names || {})[e.user_id] || e.user_id)}</span>` :
      e.type === "emoji" ? esc(emoji(e.name)) : "").join("")).join("<br>");
  } else {
    div.textContent = `[${b.type} block]`;
  }
  return div;
}

function renderMessage(m, replies = []) {
  const div = document.createElement("div");
  div.className = "message" + (m.ephemeral ? " ephemeral" : "");
  div.dataset.ts = m.ts;
  const names = state.view.names || {};
  const who = m.user && !m.ephemeral ? names[m.user] || m.user : "opsbot";
  const when = new Date(Number(m.ts) * 1000).toLocaleTimeString("en-US", { timeZone: readerZone() });
  let head = `<span class="who">${esc(who)}</span><span class="when">${esc(when)}</span>`;
  if (m.pinned) head += `<span class="pinned">📌 pinned</span>`;
  if (m.ephemeral) head += ` <span class="only-you">Only visible to you</span>`;
  div.innerHTML = `<div class="tools"><button title="Add 📌 (adds it to an incident's timeline)">📌</button></div>${head}`;
  const mine = ((m.reactions || {}).pushpin || []).includes(state.me);
  div.querySelector(".tools button").onclick = () => post("react", { channel: state.channel, ts: m.ts, reaction: "pushpin", removed: mine });
  if (m.file) {
    // Slack shows an uploaded text file (Markdown included) as a snippet: its name, then its text as it is.
    if (m.file.comment) div.insertAdjacentHTML("beforeend", `<div class="text">${mrkdwn(m.file.comment, context())}</div>`);
    const file = document.createElement("div");
    file.className = "file";
    file.innerHTML = `<div class="file-name">📄 <b>${esc(m.file.title)}</b>${m.file.name && m.file.name !== m.file.title ? ` <small>${esc(m.file.name)}</small>` : ""}</div>` +
      `<pre class="file-text">${esc(m.file.text)}</pre>`;
    div.appendChild(file);
  } else if (m.blocks && m.blocks.length) {
    m.blocks.forEach((b) => div.appendChild(block(b, m)));
  } else {
    const body = document.createElement("div");
    body.className = "text";
    body.innerHTML = mrkdwn(m.text, context());
    div.appendChild(body);
  }
  const reactions = Object.entries(m.reactions || {});
  if (reactions.length) {
    const row = document.createElement("div");
    row.className = "reactions";
    reactions.forEach(([name, who]) => {
      const chip = document.createElement("button");
      chip.className = "reaction" + (who.includes(state.me) ? " mine" : "");
      chip.textContent = `${emoji(name)} ${who.length}`;
      chip.title = who.map((u) => (state.view.names || {})[u] || u).join(", ");
      chip.onclick = () => post("react", { channel: state.channel, ts: m.ts, reaction: name, removed: who.includes(state.me) });
      row.appendChild(chip);
    });
    div.appendChild(row);
  }
  if (replies.length) div.appendChild(renderThread(m, replies));
  return div;
}

// Replies (thread_ts set) sit under their parent behind an "N replies" line, as in Slack; it opens them.
function renderThread(parent, replies) {
  const thread = document.createElement("div");
  thread.className = "thread";
  const open = state.openThreads.has(parent.ts);
  const toggle = document.createElement("button");
  toggle.className = "thread-toggle";
  toggle.textContent = `${replies.length} ${replies.length === 1 ? "reply" : "replies"}${open ? " · hide" : ""}`;
  toggle.onclick = () => {
    if (open) state.openThreads.delete(parent.ts); else state.openThreads.add(parent.ts);
    render();
  };
  thread.appendChild(toggle);
  if (open) {
    const list = document.createElement("div");
    list.className = "replies";
    replies.forEach((r) => list.appendChild(renderMessage(r)));
    thread.appendChild(list);
  }
  return thread;
}

// A channel's messages as Slack lays them out: top-level ones in order, each with its thread's replies.
function layout(messages) {
  const top = messages.filter((m) => !m.thread_ts || m.thread_ts === m.ts || m.reply_broadcast);
  const parents = new Set(top.map((m) => m.ts));
  const replies = {};
  messages.forEach((m) => {
    if (m.thread_ts && m.thread_ts !== m.ts) {
      if (parents.has(m.thread_ts)) (replies[m.thread_ts] = replies[m.thread_ts] || []).push(m);
      else if (!m.reply_broadcast) top.push(m); // a reply whose parent this reader cannot see: shown, not lost
    }
  });
  top.sort((a, b) => Number(a.ts) - Number(b.ts));
  return { top, replies };
}

function renderModal(modal) {
  const box = $("modal");
  if (!modal) { box.hidden = true; box.innerHTML = ""; return; }
  if (box.dataset.id === modal.id && !box.hidden) return; // keep what the person is typing
  box.dataset.id = modal.id;
  const v = modal.view;
  const dialog = document.createElement("form");
  dialog.className = "dialog";
  dialog.innerHTML = `<h3>${esc(v.title && v.title.text)}</h3>`;
  (v.blocks || []).forEach((b) => {
    if (b.type !== "input") { dialog.appendChild(block(b, {})); return; }
    const el = b.element;
    const label = document.createElement("label");
    label.textContent = b.label.text + (b.optional ? " (optional)" : "");
    let input;
    if (el.type === "static_select" || el.type === "multi_static_select") {
      input = document.createElement("select");
      input.multiple = el.type === "multi_static_select";
      const chosen = el.initial_option ? el.initial_option.value : null;
      input.innerHTML = (input.multiple ? "" : `<option value=""></option>`) + el.options.map((o) =>
        `<option value="${esc(o.value)}" ${o.value === chosen ? "selected" : ""}>${esc(o.text.text)}</option>`).join("");
    } else if (el.type === "datetimepicker") { // as Slack does: picked in the reader's own time zone, sent as Unix seconds
      input = document.createElement("input");
      input.type = "datetime-local";
      if (el.initial_date_time) {
        const at = new Date(el.initial_date_time * 1000);
        input.value = new Date(at.getTime() - at.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
      }
    } else {
      input = document.createElement(el.multiline ? "textarea" : "input");
      if (el.type === "number_input") { input.type = "number"; input.min = el.min_value || ""; input.max = el.max_value || ""; }
      input.value = el.initial_value || "";
    }
    input.required = !b.optional;
    input.dataset.block = b.block_id;
    input.dataset.action = el.action_id;
    input.dataset.type = el.type;
    label.appendChild(input);
    if (b.hint) label.insertAdjacentHTML("beforeend", `<small class="hint">${esc(b.hint.text)}</small>`);
    dialog.appendChild(label);
  });
  dialog.insertAdjacentHTML("beforeend", `<div class="buttons"><button type="button" class="bk" id="modal-close">${esc(v.close ? v.close.text : "Cancel")}</button><button class="bk primary">${esc(v.submit ? v.submit.text : "Submit")}</button></div>`);
  dialog.onsubmit = (event) => {
    event.preventDefault();
    const values = {};
    dialog.querySelectorAll("[data-block]").forEach((input) => {
      const entry = { type: input.dataset.type };
      if (input.dataset.type === "multi_static_select") entry.selected_options = [...input.selectedOptions].map((o) => ({ value: o.value }));
      else if (input.dataset.type === "static_select") entry.selected_option = input.value ? { value: input.value } : null;
      else if (input.dataset.type === "datetimepicker") entry.selected_date_time = input.value ? Math.floor(new Date(input.value).getTime() / 1000) : null;
      else entry.value = input.value;
      values[input.dataset.block] = { [input.dataset.action]: entry };
    });
    submitForm(modal.id, values, dialog);
  };
  box.innerHTML = "";
  box.appendChild(dialog);
  box.hidden = false;
  $("modal-close").onclick = () => { box.hidden = true; post("dismiss", { view_id: modal.id }); };
}

function render() {
  const v = state.view;
  $("me").innerHTML = v.people.map((p) => `<option value="${p.id}" ${p.id === state.me ? "selected" : ""}>${esc(p.name)}</option>`).join("");
  // Rebuilt only when it changed: a list replaced between a press and its release loses the click.
  const channels = v.channels.map((c) =>
    `<li data-channel="${esc(c.id)}" title="${esc(c.name)}" class="${c.id === state.channel ? "active" : ""}"># ${esc(c.name)}</li>`).join("");
  if (channels !== state.channelsShown) {
    $("channels").innerHTML = channels;
    state.channelsShown = channels;
  }
  const channel = v.channels.find((c) => c.id === state.channel) || v.channels[0];
  const switched = state.shown !== channel.id;
  state.channel = state.shown = channel.id;
  $("channel-name").textContent = `# ${channel.name}`;
  $("channel-name").title = channel.name;
  $("channel-topic").innerHTML = mrkdwn(channel.topic || "", context());
  renderMessages(v.messages[channel.id] || [], switched);
  const alerts = v.alerts || {};
  const demo = Object.entries(v.demo).map(([name, ok]) =>
    `<li class="demo-toggle" data-service="${esc(name)}">${ok ? "✅" : "❌"} ${esc(name)} <small>(click to ${ok ? "break" : "fix"})</small></li>` +
    (name in alerts ? `<li class="alert-toggle" data-alert="${esc(name)}">${alerts[name] ? "🔔" : "🔕"} <small>${alerts[name] ? "resolve" : "fire"} ${esc(name)}'s alert</small></li>` : "")).join("");
  if (demo !== state.demoShown) {
    $("demo").innerHTML = demo;
    state.demoShown = demo;
  }
  const words = [...v.completion["/ops"].map((s) => `/ops ${s}`), ...v.completion["/incident"].map((s) => `/incident ${s}`),
    ...v.completion.services.map((s) => `/ops health ${s}`)];
  $("completion").innerHTML = words.map((w) => `<option value="${esc(w)}">`).join("");
  renderModal(v.modal);
}

// Re-render keeping the reader's place: at the bottom it follows new messages; scrolled up it stays put and a
// "New messages" pill says something arrived below.
function renderMessages(messages, switched) {
  const box = $("messages");
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const kept = box.scrollTop;
  const { top, replies } = layout(messages);
  box.innerHTML = "";
  top.forEach((m) => box.appendChild(renderMessage(m, replies[m.ts] || [])));
  box.querySelectorAll("a[data-channel]").forEach((a) => { a.onclick = (e) => { e.preventDefault(); state.channel = a.dataset.channel; render(); }; });
  const latest = top.length ? Number(top[top.length - 1].ts) : 0;
  const arrived = !switched && latest > (state.latest[state.channel] || 0);
  state.latest[state.channel] = Math.max(latest, state.latest[state.channel] || 0);
  if (switched || atBottom) {
    box.scrollTop = box.scrollHeight;
    $("new-below").hidden = true;
  } else {
    box.scrollTop = kept;
    if (arrived) $("new-below").hidden = false;
  }
}

$("messages").onscroll = () => {
  const box = $("messages");
  if (box.scrollHeight - box.scrollTop - box.clientHeight < 40) $("new-below").hidden = true;
};
$("new-below").onclick = () => {
  $("messages").scrollTop = $("messages").scrollHeight;
  $("new-below").hidden = true;
};

async function submitForm(viewId, values, dialog) {
  const response = await fetch("/ui/submit", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: state.me, channel: state.channel, screen: screenId, view_id: viewId, values }) });
  const answer = await response.json();
  dialog.querySelectorAll(".field-error").forEach((e) => e.remove());
  if (answer.errors) { // the bot refused the form: show each message under its field, keep the form open
    Object.entries(answer.errors).forEach(([blockId, message]) => {
      const input = dialog.querySelector(`[data-block="${CSS.escape(blockId)}"]`);
      const note = document.createElement("div");
      note.className = "field-error";
      note.textContent = message;
      (input ? input.parentElement : dialog).appendChild(note);
    });
    return;
  }
  $("modal").hidden = true;
  await refresh();
}

async function refresh() {
  const response = await fetch(`/ui/state?user=${encodeURIComponent(state.me)}&screen=${encodeURIComponent(screenId)}`);
  state.view = await response.json();
  render();
}

async function post(what, data) {
  const response = await fetch(`/ui/${what}`, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user: state.me, channel: state.channel, screen: screenId, ...data }) });
  if (!response.ok) alert((await response.json()).error);
  await refresh();
}

function press(message, action) {
  post("press", { ts: message.ts, action });
}

$("composer").onsubmit = (event) => {
  event.preventDefault();
  const line = $("line").value.trim();
  if (!line) return;
  $("line").value = "";
  $("messages").scrollTop = $("messages").scrollHeight; // what you send (and its answer) is where you look next
  post(line.startsWith("/") ? "command" : "say", { text: line });
};
$("me").onchange = () => { state.me = $("me").value; refresh(); };
// One handler each for the sidebar's lists, reading what was pressed from the item (they are rebuilt as they change).
$("channels").onclick = (event) => {
  const li = event.target.closest("li[data-channel]");
  if (li) { state.channel = li.dataset.channel; render(); }
};
$("demo").onclick = (event) => {
  const v = state.view;
  const toggle = event.target.closest("li.demo-toggle");
  const alert = event.target.closest("li.alert-toggle");
  if (toggle) post("demo", { service: toggle.dataset.service, healthy: !v.demo[toggle.dataset.service] });
  if (alert) post("alert", { service: alert.dataset.alert, firing: !(v.alerts || {})[alert.dataset.alert] });
};

// Leaving (a reload, a closed tab) closes this screen's modals, as closing Slack does.
window.addEventListener("pagehide", () => {
  navigator.sendBeacon("/ui/leave", new Blob([JSON.stringify({ user: state.me, channel: state.channel, screen: screenId })], { type: "application/json" }));
});
new EventSource("/ui/events").onmessage = () => refresh();
refresh();
