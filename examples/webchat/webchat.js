// webchat.js speaks MSRP (RFC 4975) over WebSocket (RFC 7977) by hand, with
// no library: what any browser page must send and read to chat with an
// MSRP endpoint. Each WebSocket message carries exactly one MSRP chunk.
"use strict";
(() => {
  const CHUNK = 16 << 10; // body bytes per SEND chunk
  const WINDOW = 4; // chunks of a file awaiting their 200 at once
  const TIMEOUT = 30000; // RFC 4975 §7.1.1: a request unanswered in 30 s fails
  const enc = new TextEncoder(), dec = new TextDecoder();
  const $ = (id) => document.getElementById(id);

  const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, "0")).join("");
  // A browser cannot be reached, so it names itself with a random host in
  // ".invalid" (RFC 7977 Appendix A). Its session id makes it unguessable.
  const self = `msrp://${hex(6)}.invalid:2855/${hex(10)};ws`;
  let peer = ""; // the backend's a=path: the To-Path of our requests
  let sock = null;
  const pending = new Map(); // transaction id -> {resolve, reject, timer}
  const incoming = new Map(); // Message-ID -> chunks of a message being received
  const outgoing = new Map(); // Message-ID -> {li, size}: ours, awaiting their REPORT

  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  function find(buf, seq, from) {
    outer: for (let i = from; i <= buf.length - seq.length; i++) {
      for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer;
      return i;
    }
    return -1;
  }

  // request encodes one request chunk. headers keep their order: RFC 4975
  // wants To-Path and From-Path first and Content-Type last.
  function request(tid, method, headers, body, flag = "$") {
    let head = `MSRP ${tid} ${method}\r\nTo-Path: ${peer}\r\nFrom-Path: ${self}\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    const end = `-------${tid}${flag}\r\n`;
    if (!body) return enc.encode(head + end);
    return concat(enc.encode(head + "\r\n"), body, enc.encode("\r\n" + end));
  }

  // parse reads the one chunk of a WebSocket message: {tid, code or
  // method, headers (names in lower case), body (or null), flag}, or null.
  function parse(msg) {
    const eol = find(msg, [13, 10], 0);
    const start = eol < 0 ? [] : dec.decode(msg.subarray(0, eol)).split(" ");
    if (start[0] !== "MSRP" || start.length < 3) return null;
    const tid = start[1], flag = String.fromCharCode(msg[msg.length - 3]);
    const endAt = msg.length - (tid.length + 10); // "-------" tid flag CRLF
    if (endAt <= eol || dec.decode(msg.subarray(endAt)) !== `-------${tid}${flag}\r\n`) return null;
    let headEnd = endAt, body = null;
    const blank = find(msg, [13, 10, 13, 10], eol);
    if (blank >= 0 && blank + 4 <= endAt - 2) {
      headEnd = blank + 2;
      body = msg.subarray(blank + 4, endAt - 2);
    }
    const headers = {};
    for (const line of dec.decode(msg.subarray(eol + 2, headEnd)).split("\r\n")) {
      const colon = line.indexOf(":");
      if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
    }
    const c = { tid, flag, headers, body };
    if (/^\d{3}$/.test(start[2])) c.code = Number(start[2]);
    else c.method = start[2];
    return c;
  }

  // transact sends a request and resolves to its response's status code.
  // RFC 7977 §4.2 lets either frame type carry MSRP: text goes as text so
  // that it reads well in the browser's developer tools, bytes as binary.
  function transact(tid, bytes, asText) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(tid);
        reject(new Error(`no response to transaction ${tid}`));
      }, TIMEOUT);
      pending.set(tid, { resolve, reject, timer });
      sock.send(asText ? dec.decode(bytes) : bytes);
    });
  }

  function respond(req, code, comment) {
    // Failure-Report asks for no response, or for failures only (RFC 4975 §7.1.2).
    const wants = req.headers["failure-report"];
    if (wants === "no" || (wants === "partial" && code === 200)) return;
    const to = (req.headers["from-path"] || "").split(" ")[0];
    sock.send(`MSRP ${req.tid} ${code} ${comment}\r\nTo-Path: ${to}\r\nFrom-Path: ${self}\r\n-------${req.tid}$\r\n`);
  }

  function onFrame(ev) {
    const msg = typeof ev.data === "string" ? enc.encode(ev.data) : new Uint8Array(ev.data);
    const c = parse(msg);
    if (!c) return console.warn("not one MSRP chunk:", ev.data);
    if (c.code !== undefined) {
      const p = pending.get(c.tid);
      if (p) { pending.delete(c.tid); clearTimeout(p.timer); p.resolve(c.code); }
    } else if (c.headers["to-path"] !== self) {
      respond(c, 481, "Not for me");
    } else if (c.method === "SEND") {
      received(c);
    } else if (c.method === "REPORT") {
      reported(c); // REPORTs are never answered
    } else {
      respond(c, 501, "Not implemented");
    }
  }

  // received answers a SEND chunk and shows a message once whole. One
  // WebSocket keeps the chunks of a message in order.
  function received(c) {
    respond(c, 200, "OK");
    const id = c.headers["message-id"];
    if (!c.body || !id) return; // an empty SEND: a keepalive
    const parts = incoming.get(id) || [];
    parts.push(c.body.slice());
    incoming.set(id, parts);
    if (c.flag === "+") return;
    incoming.delete(id);
    if (c.flag === "#") return; // the sender gave up on it
    const body = concat(...parts), type = c.headers["content-type"] || "";
    if (type.startsWith("text/plain")) return show("them", dec.decode(body));
    show("them", "").prepend(Object.assign(document.createElement("a"), {
      href: URL.createObjectURL(new Blob([body], { type })), download: "from-backend", textContent: `${type}, ${body.length} bytes`,
    }));
  }

  // reported ticks a message of ours the backend says it has whole.
  function reported(c) {
    const id = c.headers["message-id"], m = outgoing.get(id);
    if (!m) return;
    const status = c.headers.status || "", ok = /^000 200\b/.test(status);
    const end = Number((c.headers["byte-range"] || "").split("/")[0].split("-")[1]);
    if (ok && end !== m.size) return; // about a part of it
    outgoing.delete(id);
    mark(m.li, ok ? "✓✓" : `✗ ${status}`, ok ? "delivered" : "failed");
  }

  function show(who, text) {
    const li = $("log").appendChild(document.createElement("li"));
    li.className = who;
    li.append(text, Object.assign(document.createElement("span"), { className: "tick" }));
    li.scrollIntoView();
    return li;
  }

  function mark(li, tick, state) {
    li.querySelector(".tick").textContent = ` ${tick}`;
    li.classList.add(state);
  }

  // deliver sends body as one message in chunks of CHUNK bytes, up to
  // WINDOW of them awaiting their 200, and resolves to its Message-ID once
  // all are accepted. It asks for a success REPORT, which ticks li twice.
  async function deliver(li, body, type, extra, progress) {
    const id = hex(8), size = body.length, inFlight = [];
    outgoing.set(id, { li, size });
    let acked = 0;
    try {
      for (let start = 0; start < size; start += CHUNK) {
        const end = Math.min(start + CHUNK, size), tid = hex(8);
        const bytes = request(tid, "SEND", {
          "Message-ID": id, "Success-Report": "yes", "Byte-Range": `${start + 1}-${end}/${size}`,
          ...extra, "Content-Type": type,
        }, body.subarray(start, end), end === size ? "$" : "+");
        const p = transact(tid, bytes, type === "text/plain" && size <= CHUNK).then((code) => {
          if (code !== 200) throw new Error(`bytes ${start + 1}-${end} refused: ${code}`);
          acked += end - start;
          if (progress) progress(acked);
        });
        p.catch(() => {}); // its error is thrown where it is awaited
        inFlight.push(p);
        if (inFlight.length >= WINDOW) await inFlight.shift();
      }
      await Promise.all(inFlight);
    } catch (e) {
      outgoing.delete(id);
      mark(li, `✗ ${e.message}`, "failed");
      throw e;
    }
    if (!li.classList.contains("delivered")) mark(li, "✓", "sent");
    return id;
  }

  function send(text) {
    if (!text) return Promise.reject(new Error("nothing to send"));
    return deliver(show("me", text), enc.encode(text), "text/plain", {});
  }

  function sendFile(name, data) {
    if (!data.length) return Promise.reject(new Error("empty file"));
    const li = show("me", `${name} (${data.length} bytes) `);
    const bar = li.insertBefore(document.createElement("progress"), li.lastChild);
    bar.max = data.length;
    const safe = name.replace(/[^\x20-\x7e]|["\\]/g, "_"); // a quoted-string
    return deliver(li, data, "application/octet-stream",
      { "Content-Disposition": `attachment; filename="${safe}"` }, (n) => { bar.value = n; });
  }

  // connect is the offer and answer (SIP and SDP in real life), then the
  // WebSocket, which an empty SEND binds to the session.
  async function connect() {
    const r = await fetch("session", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ path: self }),
    });
    if (!r.ok) throw new Error(`session: ${r.status} ${await r.text()}`);
    peer = (await r.json()).path;
    sock = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/msrp`, "msrp");
    sock.binaryType = "arraybuffer";
    sock.onmessage = onFrame;
    await new Promise((resolve, reject) => {
      sock.onopen = resolve;
      sock.onerror = () => reject(new Error("WebSocket failed"));
    });
    sock.onclose = (e) => {
      $("status").textContent = `disconnected (${e.code})`;
      for (const p of pending.values()) { clearTimeout(p.timer); p.reject(new Error("disconnected")); }
      pending.clear();
    };
    const tid = hex(8);
    const code = await transact(tid, request(tid, "SEND", { "Message-ID": hex(8) }, null), true);
    if (code !== 200) throw new Error(`binding refused: ${code}`);
    $("status").textContent = `connected as ${self}`;
  }

  const ready = connect();
  ready.catch((e) => { $("status").textContent = `error: ${e.message}`; });

  $("chat").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text").value;
    $("text").value = "";
    send(text).catch((err) => console.warn(err));
  });
  $("file").addEventListener("change", async () => {
    const f = $("file").files[0];
    $("file").value = "";
    if (f) sendFile(f.name, new Uint8Array(await f.arrayBuffer())).catch((err) => console.warn(err));
  });

  // A page kept in the back/forward cache would keep its WebSocket open,
  // and the session with it: leave now, and start afresh on return.
  addEventListener("pagehide", () => { if (sock) sock.close(1000); });
  addEventListener("pageshow", (e) => { if (e.persisted) location.reload(); });

  // Hooks for the browser test, and for trying things in the console.
  window.webchat = { ready, send, sendFile, self };
})();
