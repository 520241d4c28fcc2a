// dcchat.js speaks MSRP (RFC 4975) over a WebRTC data channel (RFC 8873)
// by hand, with no library, as examples/webchat/webchat.js does over
// WebSocket: each data channel message carries exactly one MSRP chunk.
//
// The page makes the offer. The channel is negotiated in SDP, not opened
// in band: both ends create it with stream id 0 and subprotocol "msrp", and
// the offer names it in an a=dcmap line, with the MSRP attributes in a=dcsa
// lines: our path, and setup:actpass, which lets the answer choose the end
// that sends the first SEND. The answer comes back from POST /offer.
"use strict";
(() => {
  const CHUNK = 16 << 10; // body bytes per SEND chunk: each chunk is one message
  const WINDOW = 4; // chunks of a message awaiting their 200 at once
  const TIMEOUT = 30000; // RFC 4975 §7.1.1: a request unanswered in 30 s fails
  const enc = new TextEncoder(), dec = new TextDecoder();

  const hex = (n) => Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => b.toString(16).padStart(2, "0")).join("");
  // The data channel carries the messages: the URI is a name only, in
  // ".invalid", made unguessable by its session id.
  const self = `msrps://${hex(6)}.invalid:9/${hex(10)};dc`;
  let peer = ""; // the Go side's a=dcsa path: the To-Path of our requests
  let chunk = CHUNK; // less if the answer's a=max-message-size is smaller
  let pc = null, dc = null;
  let bound = null; // resolves when the peer's first request arrives
  const gotFirst = new Promise((resolve) => { bound = resolve; });
  const pending = new Map(); // transaction id -> {resolve, reject, timer}
  const incoming = new Map(); // Message-ID -> chunks of a message being received
  const messages = []; // whole messages received: {type, body}

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

  // request encodes one request chunk, To-Path and From-Path first.
  function request(tid, method, headers, body, flag = "$") {
    let head = `MSRP ${tid} ${method}\r\nTo-Path: ${peer}\r\nFrom-Path: ${self}\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    const end = `-------${tid}${flag}\r\n`;
    if (!body) return enc.encode(head + end);
    return concat(enc.encode(head + "\r\n"), body, enc.encode("\r\n" + end));
  }

  // parse reads the one chunk of a message: {tid, code or method, headers
  // (names in lower case), body (or null), flag}, or null.
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

  // transact sends a request, as a binary message, and resolves to its
  // response's status code.
  function transact(tid, bytes) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(tid);
        reject(new Error(`no response to transaction ${tid}`));
      }, TIMEOUT);
      pending.set(tid, { resolve, reject, timer });
      dc.send(bytes);
    });
  }

  function respond(req, code, comment) {
    // Failure-Report asks for no response, or for failures only (RFC 4975 §7.1.2).
    const wants = req.headers["failure-report"];
    if (wants === "no" || (wants === "partial" && code === 200)) return;
    const to = (req.headers["from-path"] || "").split(" ")[0];
    dc.send(enc.encode(`MSRP ${req.tid} ${code} ${comment}\r\nTo-Path: ${to}\r\nFrom-Path: ${self}\r\n-------${req.tid}$\r\n`));
  }

  function onMessage(ev) {
    const msg = typeof ev.data === "string" ? enc.encode(ev.data) : new Uint8Array(ev.data);
    const c = parse(msg);
    if (!c) return console.warn("not one MSRP chunk:", msg.length, "bytes");
    if (c.code !== undefined) {
      const p = pending.get(c.tid);
      if (p) { pending.delete(c.tid); clearTimeout(p.timer); p.resolve(c.code); }
      return;
    }
    if (c.headers["to-path"] !== self) return respond(c, 481, "Not for me");
    bound(); // the first request binds the session when the Go side is active
    if (c.method === "SEND") received(c);
    else if (c.method !== "REPORT") respond(c, 501, "Not implemented"); // REPORTs are never answered
  }

  // received answers a SEND chunk and keeps a message once whole. The
  // channel is ordered: the chunks of a message come in order.
  function received(c) {
    respond(c, 200, "OK");
    const id = c.headers["message-id"];
    if (!c.body || !id) return; // an empty SEND: the binding, or a keepalive
    const parts = incoming.get(id) || [];
    parts.push(c.body.slice());
    incoming.set(id, parts);
    if (c.flag === "+") return;
    incoming.delete(id);
    if (c.flag === "#") return; // the sender gave up on it
    const body = concat(...parts), type = c.headers["content-type"] || "";
    messages.push({ type, body });
    show("them", type.startsWith("text/plain") ? dec.decode(body) : `${type}, ${body.length} bytes`);
  }

  function show(who, text) {
    const li = document.getElementById("log").appendChild(document.createElement("li"));
    li.className = who;
    li.textContent = text;
    return li;
  }

  // deliver sends body as one message in chunks of chunk bytes, up to
  // WINDOW of them awaiting their 200, and resolves once all are accepted.
  async function deliver(body, type) {
    const id = hex(8), size = body.length, inFlight = [];
    for (let start = 0; start < size; start += chunk) {
      const end = Math.min(start + chunk, size), tid = hex(8);
      const bytes = request(tid, "SEND", {
        "Message-ID": id, "Byte-Range": `${start + 1}-${end}/${size}`, "Content-Type": type,
      }, body.subarray(start, end), end === size ? "$" : "+");
      const p = transact(tid, bytes).then((code) => {
        if (code !== 200) throw new Error(`bytes ${start + 1}-${end} refused: ${code}`);
      });
      p.catch(() => {}); // its error is thrown where it is awaited
      inFlight.push(p);
      if (inFlight.length >= WINDOW) await inFlight.shift();
    }
    await Promise.all(inFlight);
  }

  async function send(text) {
    await deliver(enc.encode(text), "text/plain");
    show("me", text);
  }

  async function sendFile(data) {
    await deliver(data, "application/octet-stream");
    show("me", `a file of ${data.length} bytes`);
  }

  // msrpLines are the a=dcmap and a=dcsa lines of our channel.
  const msrpLines = () => [
    'a=dcmap:0 label="chat";subprotocol="msrp"',
    "a=dcsa:0 accept-types:text/plain application/octet-stream",
    `a=dcsa:0 path:${self}`,
    "a=dcsa:0 setup:actpass",
    "a=dcsa:0 msrp-cema",
  ];

  // dcsa returns the value of the answer's a=dcsa line for stream 0 and
  // the attribute name, or "".
  function dcsa(sdp, name) {
    const prefix = `a=dcsa:0 ${name}:`;
    const line = sdp.split("\r\n").find((l) => l.startsWith(prefix));
    return line ? line.slice(prefix.length) : "";
  }

  async function connect() {
    pc = new RTCPeerConnection();
    dc = pc.createDataChannel("chat", { negotiated: true, id: 0, protocol: "msrp" });
    dc.binaryType = "arraybuffer";
    dc.onmessage = onMessage;
    const open = new Promise((resolve, reject) => {
      dc.onopen = resolve;
      dc.onclose = () => reject(new Error("the data channel closed"));
    });
    const gathered = new Promise((resolve) => {
      pc.onicegatheringstatechange = () => { if (pc.iceGatheringState === "complete") resolve(); };
    });
    await pc.setLocalDescription();
    await gathered;
    // The page has one media section, the data channel's: our lines go last.
    const offer = pc.localDescription.sdp.trimEnd() + "\r\n" + msrpLines().join("\r\n") + "\r\n";
    const r = await fetch("offer", { method: "POST", headers: { "Content-Type": "application/sdp" }, body: offer });
    if (!r.ok) throw new Error(`offer: ${r.status} ${await r.text()}`);
    const answer = await r.text();
    peer = dcsa(answer, "path");
    const setup = dcsa(answer, "setup");
    if (!peer || (setup !== "active" && setup !== "passive")) throw new Error("the answer has no MSRP channel");
    // A chunk and its headers fit one message: 64 KiB when it does not say (RFC 8841 §6).
    const max = Number((answer.match(/\r\na=max-message-size:(\d+)/) || [])[1]) || 65536;
    chunk = Math.min(CHUNK, max - 1024);
    await pc.setRemoteDescription({ type: "answer", sdp: answer });
    await open;
    if (setup === "passive") {
      // We are active: an empty SEND binds the session (RFC 4975 §5.4).
      const tid = hex(8);
      const code = await transact(tid, request(tid, "SEND", { "Message-ID": hex(8) }, null));
      if (code !== 200) throw new Error(`binding refused: ${code}`);
    } else {
      await gotFirst;
    }
    document.getElementById("status").textContent = `connected as ${self} (${setup === "passive" ? "active" : "passive"})`;
    return setup === "passive" ? "active" : "passive";
  }

  const ready = connect();
  ready.catch((e) => { document.getElementById("status").textContent = `error: ${e.message}`; });

  // Leaving the page closes the channel, which ends the session at once.
  addEventListener("pagehide", () => { if (pc) pc.close(); });

  // Hooks for the browser test.
  window.dcchat = { ready, send, sendFile, messages, self, offerLines: msrpLines };
})();
