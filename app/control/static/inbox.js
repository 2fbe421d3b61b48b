// b24emu inbox page: one portal user's notifications, live, drawn the way a portal's panel shows
// them. Every piece of user text goes into the page through textContent / createTextNode; no
// HTML is ever parsed from data.
"use strict";

(function () {
  const body = document.body;
  const API = body.dataset.api;
  const EVENTS = body.dataset.events;
  const TOKEN = body.dataset.token || "";
  const LIST_LIMIT = 200;
  const READ_AFTER_MS = 400;
  const LINK_SCHEMES = ["http:", "https:", "mailto:"];
  const IMAGE_SCHEMES = ["http:", "https:"];
  const HEX_COLOR = /^#[0-9a-f]{3}(?:[0-9a-f]{3})?$/i;

  const $ = (id) => document.getElementById(id);
  const state = {
    portals: [], portal: null, recipient: null, users: new Map(), items: new Map(),
    source: null, selected: null, generation: 0,
  };

  // --- small DOM helpers ------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function safeUrl(raw, schemes) {
    const text = String(raw === undefined || raw === null ? "" : raw).trim();
    if (!text || /[\u0000-\u001f\u007f]/.test(text)) return null;
    let url;
    try {
      url = new URL(text);
    } catch (error) {
      return null;
    }
    return schemes.includes(url.protocol) ? url.href : null;
  }

  function link(href, text, className) {
    const url = safeUrl(href, LINK_SCHEMES);
    const node = el(url ? "a" : "span", className, text);
    if (url) {
      node.href = url;
      node.target = "_blank";
      node.rel = "noopener noreferrer";
    } else if (href) {
      node.classList.add("refused-link");
      node.title = "link not opened (only http, https and mailto): " + String(href);
    }
    return node;
  }

  function withToken(url) {
    if (!TOKEN) return url;
    return url + (url.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(TOKEN);
  }

  async function api(path, options) {
    const init = Object.assign({ headers: { "X-B24EMU-Control": "1" } }, options || {});
    if (TOKEN) init.headers.Authorization = "Bearer " + TOKEN;
    if (init.json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(init.json);
      delete init.json;
    }
    const response = await fetch(API + path, init);
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const reason = data && data.error_description ? data.error_description : response.status;
      const error = new Error(String(reason));
      error.status = response.status;
      throw error;
    }
    return data;
  }

  function query(params) {
    const search = new URLSearchParams();
    for (const [key, value] of Object.entries(params)) {
      if (value !== undefined && value !== null && value !== "") search.set(key, value);
    }
    return "?" + search.toString();
  }

  function userName(id) {
    const user = state.users.get(Number(id));
    if (!user) return id ? "User #" + id : "System";
    return [user.name, user.last_name].filter(Boolean).join(" ") || user.login || "User #" + id;
  }

  function initials(name) {
    const letters = String(name).split(/\s+/).filter(Boolean).map((word) => word[0]);
    return (letters.slice(0, 2).join("") || "?").toUpperCase();
  }

  function avatar(name, seed, className) {
    const node = el("span", "avatar " + (className || ""), initials(name));
    node.dataset.hue = String(Math.abs(Number(seed) || 0) % 8);
    node.setAttribute("aria-hidden", "true");
    return node;
  }

  function showError(text) {
    const box = $("error");
    box.textContent = text || "";
    box.hidden = !text;
  }

  // --- BB codes (the subset a portal renders in notifications) ----------------------------

  const BB_TAG = /\[(\/?)(b|i|u|s|url|user|color|br)(?:=([^\]]*))?\]/gi;

  function openTag(tag, arg) {
    switch (tag) {
      case "b": return el("strong");
      case "i": return el("em");
      case "u": return el("u");
      case "s": return el("s");
      case "color": {
        const node = el("span", "bb-color");
        if (arg && HEX_COLOR.test(arg.trim())) node.style.color = arg.trim();
        return node;
      }
      case "user": {
        const node = el("span", "bb-user");
        if (arg && /^\s*\d+\s*$/.test(arg)) {
          node.dataset.userId = arg.trim();
          node.title = userName(arg.trim());
        }
        return node;
      }
      case "url": {
        if (arg === undefined) return el("a", "bb-url");  // href = its text, checked on close
        return link(arg.replace(/^["']|["']$/g, ""), undefined, "bb-url");
      }
      default: return null;
    }
  }

  function closeTag(entry) {
    if (entry.tag !== "url" || entry.arg !== undefined) return;
    const node = entry.node;
    const url = safeUrl(node.textContent, LINK_SCHEMES);
    if (url) {
      node.href = url;
      node.target = "_blank";
      node.rel = "noopener noreferrer";
    } else {
      node.classList.add("refused-link");
      node.title = "link not opened (only http, https and mailto)";
    }
  }

  function renderBB(text, parent) {
    const source = String(text === undefined || text === null ? "" : text);
    const stack = [{ tag: null, node: parent }];
    const top = () => stack[stack.length - 1].node;
    const addText = (chunk) => {
      chunk.split(/\r\n|\n|\r/).forEach((line, index) => {
        if (index) top().appendChild(el("br"));
        if (line) top().appendChild(document.createTextNode(line));
      });
    };
    let last = 0;
    let match;
    BB_TAG.lastIndex = 0;
    while ((match = BB_TAG.exec(source)) !== null) {
      addText(source.slice(last, match.index));
      last = BB_TAG.lastIndex;
      const closing = match[1] === "/";
      const tag = match[2].toLowerCase();
      if (tag === "br") {
        if (closing) addText(match[0]);
        else top().appendChild(el("br"));
        continue;
      }
      if (closing) {
        let depth = stack.length - 1;
        while (depth > 0 && stack[depth].tag !== tag) depth -= 1;
        if (depth === 0) {
          addText(match[0]);
          continue;
        }
        while (stack.length > depth) closeTag(stack.pop());
        continue;
      }
      const node = openTag(tag, match[3]);
      top().appendChild(node);
      stack.push({ tag: tag, node: node, arg: match[3] });
    }
    addText(source.slice(last));
    while (stack.length > 1) closeTag(stack.pop());
    return parent;
  }

  // --- ATTACH blocks ------------------------------------------------------------------------

  function asList(value) {
    if (Array.isArray(value)) return value;
    if (value && typeof value === "object") return [value];
    return [];
  }

  function colorOf(value) {
    return typeof value === "string" && HEX_COLOR.test(value) ? value : null;
  }

  function image(src, alt, width, height, className) {
    const url = safeUrl(src, IMAGE_SCHEMES);
    if (!url) return el("span", "image-missing " + (className || ""), alt || "image");
    const node = el("img", className);
    node.src = url;
    node.alt = alt || "";
    node.loading = "lazy";
    node.referrerPolicy = "no-referrer";
    if (width > 0) node.width = Math.min(Number(width), 360);
    if (height > 0 && width > 0) node.height = Math.round(node.width * Number(height) / Number(width));
    node.addEventListener("error", () => {
      node.replaceWith(el("span", "image-missing " + (className || ""), alt || url));
    });
    return node;
  }

  function formatSize(bytes) {
    const size = Number(bytes) || 0;
    if (size <= 0) return "";
    const units = ["B", "KB", "MB", "GB"];
    let value = size;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return (unit ? value.toFixed(value < 10 ? 1 : 0) : String(value)) + " " + units[unit];
  }

  const BLOCKS = {
    MESSAGE(value) {
      return renderBB(value, el("div", "attach-message"));
    },
    USER(value) {
      const box = el("div", "attach-users");
      for (const user of asList(value)) {
        const row = el("div", "attach-user");
        const name = String(user.NAME || "");
        row.appendChild(user.AVATAR ? image(user.AVATAR, "", 28, 28, "avatar-img")
          : avatar(name, user.USER_ID || user.CHAT_ID || user.BOT_ID || name.length));
        row.appendChild(link(user.LINK, name, "attach-user-name"));
        const kind = String(user.AVATAR_TYPE || "USER").toLowerCase();
        const id = user.USER_ID || user.CHAT_ID || user.BOT_ID || user.NETWORK_ID;
        row.appendChild(el("span", "muted", id ? kind + " #" + id : kind));
        box.appendChild(row);
      }
      return box;
    },
    LINK(value) {
      const box = el("div", "attach-links");
      for (const item of asList(value)) {
        const row = el("div", "attach-link");
        if (item.PREVIEW) {
          row.appendChild(image(item.PREVIEW, item.NAME, item.WIDTH || 120, item.HEIGHT,
            "link-preview"));
        }
        const text = el("div", "attach-link-text");
        text.appendChild(link(item.LINK, item.NAME || item.LINK || "link", "attach-link-name"));
        if (item.DESC) text.appendChild(renderBB(item.DESC, el("div", "attach-link-desc")));
        if (item.HTML) {
          const html = el("div", "attach-link-html");
          html.appendChild(el("span", "muted", "HTML (shown as text): "));
          html.appendChild(el("code", "", item.HTML));
          text.appendChild(html);
        }
        if (item.EXTRA_IMAGE) text.appendChild(image(item.EXTRA_IMAGE, "", 120, 0, "link-preview"));
        row.appendChild(text);
        box.appendChild(row);
      }
      return box;
    },
    GRID(value) {
      const items = asList(value);
      if (items.length && items.every((item) => item.DISPLAY === "TABLE")) {
        const table = el("table", "attach-grid-table");
        for (const item of items) {
          const row = el("tr");
          row.appendChild(el("th", "", item.NAME));
          row.appendChild(gridValue(item, "td"));
          table.appendChild(row);
        }
        return table;
      }
      const box = el("div", "attach-grid");
      for (const item of items) {
        const display = String(item.DISPLAY || "BLOCK").toLowerCase();
        const cell = el("div", "grid-item grid-" + display);
        const name = el("div", "grid-name", item.NAME);
        if (item.WIDTH > 0 && display !== "line") name.style.width = Math.min(item.WIDTH, 400) + "px";
        if (item.NAME) cell.appendChild(name);
        cell.appendChild(gridValue(item, "div"));
        box.appendChild(cell);
      }
      return box;
    },
    IMAGE(value) {
      const box = el("div", "attach-images");
      for (const item of asList(value)) {
        const figure = el("figure", "attach-image");
        const picture = image(item.PREVIEW || item.LINK, item.NAME, item.WIDTH || 240, item.HEIGHT);
        const target = safeUrl(item.LINK, IMAGE_SCHEMES);
        if (target) {
          const anchor = link(target, undefined, "");
          anchor.appendChild(picture);
          figure.appendChild(anchor);
        } else {
          figure.appendChild(picture);
        }
        if (item.NAME) figure.appendChild(el("figcaption", "", item.NAME));
        box.appendChild(figure);
      }
      return box;
    },
    FILE(value) {
      const box = el("div", "attach-files");
      for (const item of asList(value)) {
        const row = el("div", "attach-file");
        row.appendChild(el("span", "file-icon", "FILE"));
        const fallback = String(item.LINK || "").split(/[?#]/)[0].split("/").pop() || "file";
        row.appendChild(link(item.LINK, item.NAME || fallback, "file-name"));
        const size = formatSize(item.SIZE);
        if (size) row.appendChild(el("span", "muted", size));
        box.appendChild(row);
      }
      return box;
    },
    DELIMITER(value) {
      const line = el("div", "attach-delimiter");
      const size = Number(value && value.SIZE) || 200;
      line.style.width = Math.min(size, 2000) + "px";
      const color = colorOf(value && value.COLOR);
      if (color) line.style.backgroundColor = color;
      return line;
    },
  };
  BLOCKS.RICH_LINK = BLOCKS.LINK;

  function gridValue(item, tag) {
    const cell = el(tag, "grid-value");
    const color = colorOf(item.COLOR);
    if (color) cell.style.color = color;
    if (item.LINK && safeUrl(item.LINK, LINK_SCHEMES)) {
      cell.appendChild(renderBB(item.VALUE, link(item.LINK, undefined, "")));
    } else {
      renderBB(item.VALUE, cell);
    }
    if (item.USER_ID) cell.title = userName(item.USER_ID);
    return cell;
  }

  function renderAttach(attach) {
    const box = el("div", "attach");
    const color = attach.COLOR === "transparent" ? "transparent" : colorOf(attach.COLOR);
    if (color) box.style.borderLeftColor = color;
    for (const block of asList(attach.BLOCKS)) {
      const kind = Object.keys(block || {})[0];
      const draw = BLOCKS[kind];
      const node = draw ? draw(block[kind]) : el("pre", "", JSON.stringify(block));
      node.classList.add("attach-block");
      node.dataset.kind = String(kind).toLowerCase();
      box.appendChild(node);
    }
    return box;
  }

  // --- the feed ------------------------------------------------------------------------------

  // Shown = at least 60% of the card on screen, or a screenful of a card taller than that.
  const observer = new IntersectionObserver(onVisible, { threshold: [0, 0.3, 0.6, 1] });
  const readTimers = new Map();

  function renderItem(item) {
    const li = el("li", "item");
    li.dataset.id = String(item.id);
    li.tabIndex = 0;
    const sender = item.sender_id ? userName(item.sender_id) : "System";
    li.appendChild(avatar(sender, item.sender_id, "sender"));

    const main = el("div", "item-main");
    const head = el("div", "item-head");
    head.appendChild(el("span", "sender-name", sender));
    head.appendChild(el("span", "badge badge-" + item.type, item.type));
    head.appendChild(el("span", "new-badge", "new"));
    const time = el("time", "created", String(item.created || "").replace("T", " ").slice(0, 19));
    time.dateTime = item.created || "";
    head.appendChild(time);
    main.appendChild(head);

    main.appendChild(renderBB(item.message, el("div", "message")));
    if (item.attach) main.appendChild(renderAttach(item.attach));

    const foot = el("div", "item-foot");
    if (item.tag) {
      const tag = el("span", "chip tag", "tag: " + item.tag);
      tag.title = item.stored_tag || "";
      foot.appendChild(tag);
    }
    if (item.sub_tag) {
      const sub = el("span", "chip sub-tag", "sub-tag: " + item.sub_tag);
      sub.title = item.stored_sub_tag || "";
      foot.appendChild(sub);
    }
    foot.appendChild(el("span", "muted", "#" + item.id + " · " + (item.method || "")));
    const open = el("button", "request-button", "request");
    open.type = "button";
    open.title = "Show the request that created it";
    foot.appendChild(open);
    main.appendChild(foot);
    li.appendChild(main);

    li.addEventListener("click", (event) => {
      if (event.target.closest("a")) return;
      select(item.id);
    });
    li.addEventListener("keydown", (event) => {
      if (event.key === "Enter") select(item.id);
    });
    return li;
  }

  function setRead(entry, read) {
    entry.data.read = read;
    entry.node.dataset.read = String(read);
    entry.node.classList.toggle("unread", !read);
    if (!read) observer.observe(entry.node);
    updateCounters();
  }

  function place(item, wasUnread) {
    const existing = state.items.get(item.id);
    const node = renderItem(item);
    const entry = { data: item, node: node };
    if (existing) {
      observer.unobserve(existing.node);
      existing.node.replaceWith(node);
    } else {
      const feed = $("feed");
      const after = [...feed.children].find((child) => Number(child.dataset.id) < item.id);
      feed.insertBefore(node, after || null);
    }
    state.items.set(item.id, entry);
    if (wasUnread || !item.read || (existing && existing.node.classList.contains("was-unread"))) {
      node.classList.add("was-unread");
    }
    setRead(entry, Boolean(item.read));
    if (state.selected === item.id) node.classList.add("selected");
    return entry;
  }

  function remove(id) {
    const entry = state.items.get(id);
    if (!entry) return;
    observer.unobserve(entry.node);
    entry.node.remove();
    state.items.delete(id);
    if (state.selected === id) closeDetails();
    updateCounters();
  }

  function updateCounters() {
    let unread = 0;
    for (const entry of state.items.values()) if (!entry.data.read) unread += 1;
    const counter = $("unread-count");
    counter.textContent = String(unread);
    counter.dataset.count = String(unread);
    $("total").textContent = state.items.size + (state.items.size === 1 ? " notification" : " notifications");
    $("empty").hidden = state.items.size > 0;
  }

  function onVisible(entries) {
    for (const seen of entries) {
      const id = Number(seen.target.dataset.id);
      const shown = seen.isIntersecting && (seen.intersectionRatio >= 0.6
        || seen.intersectionRect.height >= 0.5 * (seen.rootBounds ? seen.rootBounds.height : 600));
      if (!shown) {
        clearTimeout(readTimers.get(id));
        readTimers.delete(id);
        continue;
      }
      if (readTimers.has(id)) continue;
      readTimers.set(id, setTimeout(() => markRead(id), READ_AFTER_MS));
    }
  }

  async function markRead(id) {
    readTimers.delete(id);
    const entry = state.items.get(id);
    if (!entry || entry.data.read || !$("mark-read").checked) return;
    if (document.visibilityState !== "visible") return;
    observer.unobserve(entry.node);
    try {
      await api("/notifications/" + id + "/read" + query({ portal: state.portal }),
        { method: "POST", json: { read: true } });
      const current = state.items.get(id);
      if (current) setRead(current, true);
    } catch (error) {
      if (error.status === 404) remove(id);
      else observer.observe(entry.node);
    }
  }

  async function fetchItem(id) {
    try {
      const item = await api("/notifications/" + id + query({ portal: state.portal }));
      if (Number(item.recipient_id) === Number(state.recipient)) place(item, !item.read);
      updateCounters();
    } catch (error) {
      if (error.status !== 404) showError("Could not load notification #" + id + ": " + error.message);
    }
  }

  async function loadList() {
    const generation = state.generation;
    try {
      const page = await api("/notifications" + query({
        portal: state.portal, recipient: state.recipient, limit: LIST_LIMIT,
      }));
      if (generation !== state.generation) return;
      const seen = new Set();
      for (const item of page.items) {
        seen.add(item.id);
        place(item, false);
      }
      for (const id of [...state.items.keys()]) if (!seen.has(id)) remove(id);
      showError("");
      updateCounters();
      body.dataset.loaded = "true";
    } catch (error) {
      showError("Could not load notifications: " + error.message);
    }
  }

  // --- details: the notification and the request that created it --------------------------

  function field(list, name, value) {
    list.appendChild(el("dt", "", name));
    const cell = el("dd");
    if (value instanceof Node) cell.appendChild(value);
    else cell.textContent = value === null || value === undefined || value === "" ? "—" : String(value);
    list.appendChild(cell);
  }

  function select(id) {
    const entry = state.items.get(id);
    if (!entry) return;
    for (const node of document.querySelectorAll(".item.selected")) node.classList.remove("selected");
    entry.node.classList.add("selected");
    state.selected = id;
    const item = entry.data;
    const fields = $("fields");
    fields.replaceChildren();
    field(fields, "id", item.id);
    field(fields, "type", item.type + " (" + item.notify_type + ")");
    field(fields, "from", item.sender_id ? userName(item.sender_id) + " (#" + item.sender_id + ")" : "system");
    field(fields, "to", userName(item.recipient_id) + " (#" + item.recipient_id + ")");
    field(fields, "created", item.created);
    field(fields, "read", item.read ? "yes" + (item.read_at ? " at " + item.read_at : "") : "no");
    field(fields, "tag", item.tag ? item.tag + "  [" + item.stored_tag + "]" : "");
    field(fields, "sub-tag", item.sub_tag ? item.sub_tag + "  [" + item.stored_sub_tag + "]" : "");
    field(fields, "module / event", item.module + " / " + item.event);
    const stored = $("stored");
    stored.replaceChildren();
    field(stored, "message", el("pre", "raw", item.message));
    if (item.message_out) field(stored, "message_out", el("pre", "raw", item.message_out));
    if (item.attach) field(stored, "attach", el("pre", "raw", JSON.stringify(item.attach, null, 2)));
    $("details").hidden = false;
    showRequest(item);
  }

  async function showRequest(item) {
    const box = $("request");
    box.replaceChildren(el("p", "muted", item.request_id ? "Loading…" : "No request id recorded."));
    if (!item.request_id) return;
    try {
      const page = await api("/journal" + query({ portal: state.portal, request_id: item.request_id }));
      if (state.selected !== item.id) return;
      const entry = page.items[0];
      if (!entry) {
        box.replaceChildren(el("p", "muted",
          "Request " + item.request_id + " is no longer in the journal."));
        return;
      }
      const list = el("dl", "fields journal-entry");
      field(list, "request", entry.request_id);
      field(list, "method", entry.method);
      field(list, "HTTP", entry.http_method + " " + entry.path);
      const status = el("span", "status " + (entry.status >= 400 ? "status-bad" : "status-ok"),
        entry.status + (entry.error ? " " + entry.error : ""));
      field(list, "status", status);
      field(list, "auth", entry.auth_type + " " + (entry.credential || ""));
      field(list, "user", entry.user_id);
      field(list, "client", entry.client_ip);
      field(list, "at", Number.isFinite(entry.at) ? new Date(entry.at * 1000).toISOString() : entry.at);
      field(list, "duration", entry.duration === null || entry.duration === undefined ? ""
        : (Number(entry.duration) * 1000).toFixed(1) + " ms");
      field(list, "params", el("pre", "raw params", JSON.stringify(entry.params, null, 2)));
      box.replaceChildren(list);
    } catch (error) {
      box.replaceChildren(el("p", "error", "Could not read the journal: " + error.message));
    }
  }

  function closeDetails() {
    $("details").hidden = true;
    state.selected = null;
    for (const node of document.querySelectorAll(".item.selected")) node.classList.remove("selected");
  }

  // --- live updates -------------------------------------------------------------------------

  function setLive(text, status) {
    const live = $("live");
    live.textContent = text;
    live.dataset.state = status;
  }

  function connect() {
    if (state.source) state.source.close();
    state.generation += 1;
    setLive("connecting", "connecting");
    const url = withToken(EVENTS + query({ portal: state.portal, recipient: state.recipient }));
    const source = new EventSource(url);
    state.source = source;
    const payload = (event) => JSON.parse(event.data);
    source.addEventListener("ready", () => {
      setLive("live", "live");
      loadList();
    });
    source.addEventListener("added", (event) => {
      const ids = payload(event).ids;
      if (ids.length > 20) loadList();
      else ids.forEach(fetchItem);
    });
    source.addEventListener("deleted", (event) => payload(event).ids.forEach(remove));
    source.addEventListener("read", (event) => {
      const data = payload(event);
      for (const id of data.ids) {
        const entry = state.items.get(id);
        if (entry) setRead(entry, data.read);
      }
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) setLive("offline", "offline");
      else setLive("reconnecting", "connecting");
    });
  }

  // --- portal and user pickers --------------------------------------------------------------

  function fillUsers(portal, wanted) {
    const picker = $("recipient");
    picker.replaceChildren();
    state.users = new Map();
    for (const user of portal.users) {
      state.users.set(Number(user.id), user);
      const label = userName(user.id) + " (#" + user.id + ")" + (user.active ? "" : " inactive");
      const option = el("option", "", label);
      option.value = String(user.id);
      picker.appendChild(option);
    }
    const ids = portal.users.map((user) => String(user.id));
    picker.value = ids.includes(String(wanted)) ? String(wanted) : (ids[0] || "");
    return picker.value;
  }

  function choose(portalName, recipient) {
    const portal = state.portals.find((item) => item.name === portalName) || state.portals[0];
    if (!portal) {
      showError("No portal is loaded.");
      return;
    }
    $("portal").value = portal.name;
    state.portal = portal.name;
    state.recipient = fillUsers(portal, recipient);
    for (const id of [...state.items.keys()]) remove(id);
    closeDetails();
    $("title").textContent = "Notifications of " + userName(state.recipient);
    document.title = userName(state.recipient) + " · " + portal.name + " · b24emu inbox";
    const search = new URLSearchParams(location.search);
    search.set("portal", state.portal);
    search.set("recipient", state.recipient);
    history.replaceState(null, "", "?" + search.toString());
    if (state.recipient) connect();
  }

  async function start() {
    $("close-details").addEventListener("click", closeDetails);
    $("mark-read").addEventListener("change", () => {
      if (!$("mark-read").checked) return;
      for (const entry of state.items.values()) {
        if (!entry.data.read) {
          observer.unobserve(entry.node);
          observer.observe(entry.node);
        }
      }
    });
    try {
      state.portals = (await api("/portals")).items;
    } catch (error) {
      showError("Could not load portals: " + error.message);
      return;
    }
    const picker = $("portal");
    for (const portal of state.portals) {
      const option = el("option", "", portal.name + " (" + portal.domain + ")");
      option.value = portal.name;
      picker.appendChild(option);
    }
    picker.addEventListener("change", () => choose(picker.value, null));
    $("recipient").addEventListener("change", () => choose(state.portal, $("recipient").value));
    const params = new URLSearchParams(location.search);
    choose(params.get("portal") || "default", params.get("recipient"));
  }

  start();
})();
