// Slack's text formatting as its clients show it: mrkdwn, emoji shortcodes and <!date^…> tokens.
// Pure functions of their arguments (no page state), so app.js and the browser tests call them alike.
"use strict";

function esc(text) {
  return String(text ?? "").replace(/&(?!(amp|lt|gt|quot);)/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

// The shortcodes opsbot's messages and common runbooks use; unknown ones stay as text, as in Slack.
const EMOJI = {
  "+1": "👍", "-1": "👎", "100": "💯", alarm_clock: "⏰", ambulance: "🚑", arrow_down: "⬇️", arrow_forward: "▶️",
  arrow_left: "⬅️", arrow_right: "➡️", arrow_up: "⬆️", arrows_counterclockwise: "🔄", back: "🔙", bar_chart: "📊",
  battery: "🔋", bell: "🔔", black_circle: "⚫", blue_circle: "🔵", large_blue_circle: "🔵", book: "📖", books: "📚",
  bookmark_tabs: "📑", boom: "💥", broken_heart: "💔", bug: "🐛", bulb: "💡", bust_in_silhouette: "👤",
  busts_in_silhouette: "👥", calendar: "📆", card_index_dividers: "🗂️", chart_with_downwards_trend: "📉",
  chart_with_upwards_trend: "📈", checkered_flag: "🏁", clap: "👏", clipboard: "📋", clock: "🕐", cloud: "☁️",
  computer: "💻", construction: "🚧", cool: "🆒", date: "📅", dart: "🎯", desktop_computer: "🖥️", dollar: "💵",
  electric_plug: "🔌", email: "📧", envelope: "✉️", exclamation: "❗", eyes: "👀", fast_forward: "⏩",
  file_folder: "📁", fire: "🔥", fire_engine: "🚒", floppy_disk: "💾", gear: "⚙️", ghost: "👻",
  globe_with_meridians: "🌐", green_circle: "🟢", large_green_circle: "🟢", green_heart: "💚", grey_exclamation: "❕",
  grey_question: "❔", hammer: "🔨", hammer_and_wrench: "🛠️", handshake: "🤝", heart: "❤️", heavy_check_mark: "✔️",
  heavy_exclamation_mark: "❗", heavy_minus_sign: "➖", heavy_multiplication_x: "✖️", heavy_plus_sign: "➕",
  hourglass: "⌛", hourglass_flowing_sand: "⏳", inbox_tray: "📥", incoming_envelope: "📨", information_source: "ℹ️",
  key: "🔑", large_blue_diamond: "🔷", large_orange_diamond: "🔶", link: "🔗", lock: "🔒", loudspeaker: "📢",
  mag: "🔍", mag_right: "🔎", mega: "📣", memo: "📝", muscle: "💪", negative_squared_cross_mark: "❎", new: "🆕",
  no_bell: "🔕", no_entry: "⛔", no_entry_sign: "🚫", octagonal_sign: "🛑", ok: "🆗", ok_hand: "👌",
  open_file_folder: "📂", orange_circle: "🟠", large_orange_circle: "🟠", outbox_tray: "📤", package: "📦",
  page_facing_up: "📄", paperclip: "📎", partly_sunny: "⛅", pencil: "📝", pencil2: "✏️", point_down: "👇",
  point_left: "👈", point_right: "👉", point_up: "☝️", police_car: "🚓", pray: "🙏", pushpin: "📌", question: "❓",
  rain_cloud: "🌧️", raised_hands: "🙌", recycle: "♻️", red_circle: "🔴", repeat: "🔁", rewind: "⏪", robot_face: "🤖",
  rocket: "🚀", rotating_light: "🚨", scroll: "📜", shield: "🛡️", shrug: "🤷", skull: "💀",
  slightly_smiling_face: "🙂", small_blue_diamond: "🔹", small_orange_diamond: "🔸", smile: "😄", snowflake: "❄️",
  sos: "🆘", sparkles: "✨", speech_balloon: "💬", spiral_calendar_pad: "🗓️", star: "⭐", stopwatch: "⏱️", sunny: "☀️",
  sweat_smile: "😅", tada: "🎉", thermometer: "🌡️", thinking_face: "🤔", thumbsdown: "👎", thumbsup: "👍",
  timer_clock: "⏲️", traffic_light: "🚥", triangular_flag_on_post: "🚩", trophy: "🏆", umbrella: "☂️", unlock: "🔓",
  wave: "👋", warning: "⚠️", white_check_mark: "✅", white_circle: "⚪", x: "❌", yellow_circle: "🟡",
  large_yellow_circle: "🟡", zap: "⚡", zzz: "💤", ballot_box_with_check: "☑️", arrow_heading_up: "⤴️",
  leftwards_arrow_with_hook: "↩️", red_square: "🟥", large_red_square: "🟥", green_square: "🟩", orange_square: "🟧",
  yellow_square: "🟨", stop_sign: "🛑", moneybag: "💰", satellite: "📡", scream: "😱", cry: "😢", jigsaw: "🧩",
  test_tube: "🧪", broom: "🧹", toolbox: "🧰", bricks: "🧱", label: "🏷️", watch: "⌚", mailbox: "📫",
};

function emoji(name) {
  return EMOJI[name] || `:${name}:`;
}

function emojify(html) {
  return html.replace(/:([a-z0-9_+-]+):/g, (whole, name) => EMOJI[name] || whole);
}

// <!date^ts^format[^link]|fallback>: rendered in the reader's time zone (their Slack profile's `tz`).
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
  "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

function ordinal(n) {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : ({ 1: "st", 2: "nd", 3: "rd" })[n % 10] || "th";
  return `${n}${suffix}`;
}

function wallClock(ms, tz) {
  let parts;
  try {
    parts = new Intl.DateTimeFormat("en-US", { timeZone: tz || undefined, hourCycle: "h23", year: "numeric", month: "numeric",
      day: "numeric", hour: "numeric", minute: "numeric", second: "numeric" }).formatToParts(new Date(ms));
  } catch (_) { // an unknown zone: the browser's own
    return wallClock(ms, undefined);
  }
  const get = (type) => Number((parts.find((p) => p.type === type) || {}).value);
  const y = get("year"), m = get("month"), d = get("day");
  return { y, m, d, h: get("hour") % 24, min: get("minute"), sec: get("second"), weekday: new Date(Date.UTC(y, m - 1, d)).getUTCDay(),
    dayNumber: Date.UTC(y, m - 1, d) / 86400000 };
}

function ago(seconds) {
  const span = Math.abs(seconds);
  const units = [["year", 365 * 86400], ["month", 30 * 86400], ["day", 86400], ["hour", 3600], ["minute", 60]];
  const [unit, size] = units.find(([, size]) => span >= size) || [];
  if (!unit) return seconds >= 0 ? "just now" : "in a few seconds";
  const n = Math.floor(span / size);
  const amount = `${n} ${unit}${n === 1 ? "" : "s"}`;
  return seconds >= 0 ? `${amount} ago` : `in ${amount}`;
}

function slackDate(ts, format, fallback, tz, nowMs = Date.now()) {
  const seconds = Number(ts);
  if (!String(ts).trim() || !Number.isFinite(seconds) || !format) return fallback;
  const at = wallClock(seconds * 1000, tz);
  const today = wallClock(nowMs, tz);
  const two = (n) => String(n).padStart(2, "0");
  const clock = (secs) => `${at.h % 12 || 12}:${two(at.min)}${secs ? `:${two(at.sec)}` : ""} ${at.h < 12 ? "AM" : "PM"}`;
  const plain = {
    date_num: () => `${at.y}-${two(at.m)}-${two(at.d)}`,
    date: () => `${MONTHS[at.m - 1]} ${ordinal(at.d)}, ${at.y}`,
    date_short: () => `${MONTHS[at.m - 1].slice(0, 3)} ${at.d}, ${at.y}`,
    date_long: () => `${DAYS[at.weekday]}, ${MONTHS[at.m - 1]} ${ordinal(at.d)}, ${at.y}`,
    time: () => clock(false),
    time_secs: () => clock(true),
    ago: () => ago((nowMs - seconds * 1000) / 1000),
  };
  const relative = { [-1]: "yesterday", 0: "today", 1: "tomorrow" }[at.dayNumber - today.dayNumber];
  let known = true;
  const out = format.replace(/\{([a-z_]+)\}/g, (whole, token, offset) => {
    const pretty = token.match(/^(date|date_short|date_long)_pretty$/);
    if (pretty && relative) return offset === 0 ? relative[0].toUpperCase() + relative.slice(1) : relative;
    const render = plain[pretty ? pretty[1] : token];
    if (!render) known = false;
    return render ? render() : whole;
  });
  return known ? out : fallback;
}

// Slack mrkdwn: <…> entities first, then code spans and blocks (nothing is formatted inside them), then
// bold, italics, strikethrough, quotes and emoji in the rest. `ctx`: {names, channels, tz, now}.
function mrkdwn(text, ctx = {}) {
  const names = ctx.names || {};
  const channels = ctx.channels || {};
  const saved = [];
  const keep = (html) => { saved.push(html); return `\u0000${saved.length - 1}\u0000`; };
  let source = String(text ?? "").replace(/<([^<>]+)>/g, (_, inner) => keep(entity(inner, names, channels, ctx)));
  source = source
    .replace(/```([\s\S]*?)```\n?/g, (_, code) => keep(`<pre>${esc(code.replace(/^\n/, "").replace(/\n$/, ""))}</pre>`))
    .replace(/`([^`\n]+)`/g, (_, code) => keep(`<code>${esc(code)}</code>`));
  const edge = "(^|[\\s(>;\\u0000\"'])";
  const after = "(?=$|[\\s).,;:!?&\\u0000\"'])";
  let html = esc(source)
    .replace(new RegExp(`${edge}\\*([^*\\s](?:[^*\\n]*[^*\\s])?)\\*${after}`, "g"), "$1<b>$2</b>")
    .replace(new RegExp(`${edge}_([^_\\s](?:[^_\\n]*[^_\\s])?)_${after}`, "g"), "$1<i>$2</i>")
    .replace(new RegExp(`${edge}~([^~\\s](?:[^~\\n]*[^~\\s])?)~${after}`, "g"), "$1<s>$2</s>")
    .replace(/(^|\n)&gt; ?([^\n]*)\n?/g, "$1<blockquote>$2</blockquote>");
  html = emojify(html);
  // Code blocks hold other saved pieces (a link inside code), so restore until none is left.
  while (/\u0000\d+\u0000/.test(html)) html = html.replace(/\u0000(\d+)\u0000/g, (_, i) => saved[Number(i)]);
  return html;
}

function entity(inner, names, channels, ctx) {
  const bar = inner.indexOf("|");
  const head = bar < 0 ? inner : inner.slice(0, bar);
  const label = bar < 0 ? "" : inner.slice(bar + 1);
  if (head.startsWith("@")) return `<span class="mention">@${esc(names[head.slice(1)] || label || head.slice(1))}</span>`;
  if (head.startsWith("#")) {
    const id = head.slice(1);
    return `<a href="#" data-channel="${esc(id)}" class="mention">#${esc(channels[id] || label || id)}</a>`;
  }
  if (head.startsWith("!subteam^")) return `<span class="mention">${esc(label || `@${head.slice(9)}`)}</span>`;
  if (head.startsWith("!date^")) {
    const [, ts, format, link] = head.split("^");
    const shown = esc(slackDate(ts, format, label, ctx.tz, ctx.now));
    return link ? `<a href="${esc(link)}" target="_blank" rel="noopener">${shown}</a>` : `<span class="date">${shown}</span>`;
  }
  if (head.startsWith("!")) return `<span class="mention">@${esc(head.slice(1))}</span>`;
  return `<a href="${esc(head)}" target="_blank" rel="noopener">${esc(label || head)}</a>`;
}
