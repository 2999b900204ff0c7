// Drives samples/websocket_server with node's `ws` package (a real client) and with raw sockets
// (exact bytes for malformed frames). Usage: node ws_client.cjs WS_MODULE_DIR PORT MODE
//   MODE echo:    text and binary echo of 0 B .. 16 MiB, fragmented messages, ping/pong, close
//                 codes, 100 concurrent clients.
//   MODE raw:     protocol violations get the right close code; bad handshakes the right status.
//   MODE toobig:  (server started with a small --max-message) a big message gets close 1009.
//   MODE hold:    opens clients, prints "holding" and waits until the server ends them (the
//                 script stops the server meanwhile); exits 0 once every client saw its end.
// Prints one line per check; exits 1 at the first failure.
"use strict";
const path = require("path");
const net = require("net");
const crypto = require("crypto");
const WebSocket = require(path.join(process.argv[2], "node_modules", "ws"));
const port = Number(process.argv[3]);
const mode = process.argv[4];
const url = `ws://127.0.0.1:${port}/any/path`;

function fail(msg) {
  console.log(`FAIL: ${msg}`);
  process.exit(1);
}
function ok(msg) {
  console.log(`ok: ${msg}`);
}

// Opens a client and collects what arrives.
function open() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { maxPayload: 64 << 20 });
    ws.binaryType = "nodebuffer";
    ws.setMaxListeners(0);  // nextMessage adds an error listener per await
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}
function nextMessage(ws) {
  return new Promise((resolve, reject) => {
    ws.once("message", (data, isBinary) => resolve({ data, isBinary }));
    ws.once("error", reject);
    ws.once("close", (code) => reject(new Error(`closed with ${code} while awaiting a message`)));
  });
}
function closed(ws) {
  return new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason })));
}
function pattern(n, seed) {
  const b = Buffer.alloc(n);
  let x = (seed * 2654435761 + 1) >>> 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

async function echo() {
  const ws = await open();
  const sizes = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20];
  for (const n of sizes) {
    const bin = pattern(n, n);
    ws.send(bin, { binary: true });
    const m = await nextMessage(ws);
    if (!m.isBinary || !Buffer.from(m.data).equals(bin)) fail(`binary echo of ${n} bytes`);
    const text = "é€𝄞a".repeat(Math.ceil(n / 10)).slice(0, n);
    ws.send(text);
    const t = await nextMessage(ws);
    if (t.isBinary || t.data.toString() !== text) fail(`text echo of ${text.length} chars`);
  }
  ok(`text and binary echo of ${sizes.join(", ")} bytes`);

  // A fragmented message, with a character split across fragments and a ping in between.
  const whole = Buffer.from("fragmented: 𝄞 message");
  ws.send(whole.subarray(0, 13), { fin: false, binary: false });
  ws.ping(Buffer.from("between"));
  ws.send(whole.subarray(13), { fin: true, binary: false });
  const f = await nextMessage(ws);
  if (f.data.toString() !== whole.toString()) fail(`fragmented echo gave '${f.data}'`);
  ok("fragmented message reassembled (split character, ping between fragments)");

  // A binary message in three 1 MiB fragments (random bytes), an empty fragment among them.
  const parts = [pattern(1 << 20, 1), pattern(0, 2), pattern(1 << 20, 3), pattern(1 << 20, 4)];
  parts.forEach((d, i) => ws.send(d, { binary: true, fin: i === parts.length - 1 }));
  const fb = await nextMessage(ws);
  if (!fb.isBinary || !Buffer.from(fb.data).equals(Buffer.concat(parts))) {
    fail("fragmented binary echo");
  }
  ok("fragmented 3 MiB binary message reassembled byte-exact");

  const pong = new Promise((resolve) => ws.once("pong", resolve));
  ws.ping(Buffer.from("ping-data"));
  const p = await pong;
  if (p.toString() !== "ping-data") fail(`pong carried '${p}'`);
  for (const n of [0, 125]) {
    const pong2 = new Promise((resolve) => ws.once("pong", resolve));
    const data = pattern(n, 7);
    ws.ping(data);
    if (!Buffer.from(await pong2).equals(data)) fail(`pong for a ${n}-byte ping`);
  }
  ok("ping answered by a pong with the same data (0, 9 and 125 bytes)");

  const c = closed(ws);
  ws.close(1000, "bye");
  const r = await c;
  if (r.code !== 1000) fail(`close 1000 answered with ${r.code}`);
  ok("close 1000 echoed");

  const ws2 = await open();
  const c2 = closed(ws2);
  ws2.close(4321, "custom");
  if ((await c2).code !== 4321) fail("close 4321 not echoed");
  ok("close 4321 echoed");

  // Many clients at once, each with its own data.
  const clients = await Promise.all(Array.from({ length: 100 }, () => open()));
  await Promise.all(
    clients.map(async (w, i) => {
      const data = pattern(1000 + i, i);
      w.send(data);
      const m = await nextMessage(w);
      if (!Buffer.from(m.data).equals(data)) fail(`client ${i} got other data`);
      const cc = closed(w);
      w.close(1000);
      await cc;
    })
  );
  ok("100 concurrent clients");
}

// A raw connection that completed the handshake; returns the socket and its byte queue.
// `early` is written in the same write as the request (frames before the 101 arrives).
function rawUpgrade(headers, early) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    let endedAt = null;
    const ended = new Promise((r) => sock.once("close", () => r((endedAt = Date.now()))));
    sock.on("data", (d) => (buf = Buffer.concat([buf, d])));
    sock.on("error", () => {});  // a reset shows as the close event
    const key = crypto.randomBytes(16).toString("base64");
    const lines = headers || [
      "GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`, "Sec-WebSocket-Version: 13",
    ];
    sock.write(Buffer.concat([Buffer.from(lines.join("\r\n") + "\r\n\r\n"), early || Buffer.alloc(0)]));
    const started = Date.now();
    const poll = setInterval(() => {
      const end = buf.indexOf("\r\n\r\n");
      if (end >= 0) {
        clearInterval(poll);
        const head = buf.subarray(0, end).toString();
        buf = buf.subarray(end + 4);
        resolve({ sock, head, rest: () => buf, key, ended, endedAt: () => endedAt });
      } else if (Date.now() - started > 5000 || endedAt !== null) {
        clearInterval(poll);
        reject(new Error("no handshake answer"));
      }
    }, 5);
  });
}
// A client frame (masked unless told otherwise).
function frame(opcode, payload, { fin = true, mask = true, rsv = 0 } = {}) {
  const len = payload.length;
  const head = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  if (len < 126) head.push((mask ? 0x80 : 0) | len);
  else if (len < 65536) head.push((mask ? 0x80 : 0) | 126, len >> 8, len & 0xff);
  else {
    head.push((mask ? 0x80 : 0) | 127, 0, 0, 0, 0);
    head.push((len >>> 24) & 0xff, (len >>> 16) & 0xff, (len >>> 8) & 0xff, len & 0xff);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i % 4];
  return Buffer.concat([Buffer.from(head), key, body]);
}
// Waits for the server's close frame; returns its code (1005 for none) and when it arrived.
function closeFrame(conn) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const poll = setInterval(() => {
      const b = conn.rest();
      for (let i = 0; i + 1 < b.length; ) {
        const op = b[i] & 0x0f;
        let len = b[i + 1] & 0x7f, at = i + 2;
        if (len === 126) { len = b.readUInt16BE(i + 2); at = i + 4; }
        if (len === 127) { len = Number(b.readBigUInt64BE(i + 2)); at = i + 10; }
        if (at + len > b.length) break;
        if (op === 0x8) {
          clearInterval(poll);
          return resolve({ code: len >= 2 ? b.readUInt16BE(at) : 1005, at: Date.now() });
        }
        i = at + len;
      }
      if (Date.now() - started > 5000) {
        clearInterval(poll);
        conn.sock.destroy();
        reject(new Error("no close frame"));
      }
    }, 5);
  });
}

async function expectClose(what, bytes, code) {
  const conn = await rawUpgrade();
  if (!conn.head.startsWith("HTTP/1.1 101")) fail(`${what}: handshake answered '${conn.head}'`);
  conn.sock.write(bytes);
  const got = (await closeFrame(conn)).code;
  conn.sock.destroy();
  if (got !== code) fail(`${what}: close ${got}, expected ${code}`);
  ok(`${what} -> close ${code}`);
}

// After the server's close for a violation: with `reply` our close frame must end the TCP
// connection at once; without, the server gives up waiting after its bound (2 s).
async function expectClosingHandshake(what, bytes, code, reply) {
  const conn = await rawUpgrade();
  conn.sock.write(bytes);
  const got = await closeFrame(conn);
  if (got.code !== code) fail(`${what}: close ${got.code}, expected ${code}`);
  if (reply) {
    // The server reads on through the rest of the offending frame: it must still be waiting.
    await new Promise((r) => setTimeout(r, 300));
    if (conn.endedAt() !== null) fail(`${what}: TCP ended before our close frame`);
    conn.sock.write(frame(0x8, Buffer.from([code >> 8, code & 0xff])));
  }
  const timer = setTimeout(() => conn.sock.destroy(), 8000);
  const end = await conn.ended;
  clearTimeout(timer);
  const waited = end - got.at - (reply ? 300 : 0);
  if (reply && waited > 1000) fail(`${what}: TCP ended ${waited} ms after our close frame`);
  if (!reply && (waited < 1500 || waited > 6000)) {
    fail(`${what}: TCP ended ${waited} ms after the server's close, expected about 2 s`);
  }
  ok(`${what} -> close ${code}, TCP ended ${reply ? "after our close" : "after about 2 s"}`);
}

async function expectStatus(what, headers, status) {
  const conn = await rawUpgrade(headers);
  conn.sock.destroy();
  if (!conn.head.startsWith(`HTTP/1.1 ${status}`)) fail(`${what}: answered '${conn.head}'`);
  ok(`${what} -> ${status}`);
}

async function raw() {
  // A client that stays connected through all the violations below.
  const bystander = await open();

  // The accept key of a real handshake.
  const conn = await rawUpgrade();
  const want = crypto.createHash("sha1")
    .update(conn.key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
  if (!conn.head.includes(`Sec-WebSocket-Accept: ${want}`)) fail(`accept key: '${conn.head}'`);
  conn.sock.destroy();
  ok("Sec-WebSocket-Accept matches");

  // Frames sent together with the request: the reader's bytes past the head are the session's.
  const early = await rawUpgrade(null, Buffer.concat([frame(0x1, Buffer.from("early")),
                                                      frame(0x9, Buffer.from("p"))]));
  await new Promise((r) => setTimeout(r, 200));
  const want2 = Buffer.from([0x81, 5, ...Buffer.from("early"), 0x8a, 1, 0x70]);
  if (!early.rest().equals(want2)) fail(`frames sent with the request: got ${early.rest().toString("hex")}`);
  early.sock.destroy();
  ok("frames sent in the same write as the upgrade request are echoed");

  await expectClose("unmasked frame", frame(0x1, Buffer.from("hi"), { mask: false }), 1002);
  await expectClose("invalid UTF-8 text", frame(0x1, Buffer.from([0x68, 0xc0, 0xaf])), 1007);
  await expectClose("surrogate in text", frame(0x1, Buffer.from([0xed, 0xa0, 0x80])), 1007);
  await expectClose("text ending inside a character", frame(0x1, Buffer.from([0xe2, 0x82])), 1007);
  await expectClose("reserved opcode 3", frame(0x3, Buffer.from("x")), 1002);
  await expectClose("reserved bit set", frame(0x1, Buffer.from("x"), { rsv: 4 }), 1002);
  await expectClose("126-byte ping", frame(0x9, Buffer.alloc(126)), 1002);
  await expectClose("fragmented ping", frame(0x9, Buffer.from("x"), { fin: false }), 1002);
  await expectClose("continuation without a start", frame(0x0, Buffer.from("x")), 1002);
  await expectClose("new message inside a fragmented one",
    Buffer.concat([frame(0x1, Buffer.from("a"), { fin: false }), frame(0x1, Buffer.from("b"))]),
    1002);
  await expectClose("close with a 1-byte payload", frame(0x8, Buffer.from([3])), 1002);
  await expectClose("close with code 1005", frame(0x8, Buffer.from([0x03, 0xed])), 1002);
  await expectClose("close with an invalid UTF-8 reason",
    frame(0x8, Buffer.from([0x03, 0xe8, 0xff])), 1007);
  await expectClose("close 1001 echoed", frame(0x8, Buffer.from([0x03, 0xe9])), 1001);
  await expectClose("close without a code", frame(0x8, Buffer.alloc(0)), 1005);

  // The bounded wait for the client's close after a violation, with the offending frame's
  // payload (random bytes, in two frames' worth) still arriving.
  const big = pattern(200000, 9);
  await expectClosingHandshake("unmasked 200 kB frame, client answers the close",
    frame(0x2, big, { mask: false }), 1002, true);
  await expectClosingHandshake("reserved opcode 3 with 200 kB, client answers the close",
    frame(0x3, big), 1002, true);
  await expectClosingHandshake("invalid UTF-8, client never answers",
    frame(0x1, Buffer.from([0xff])), 1007, false);

  const base = ["GET / HTTP/1.1", "Host: x", "Upgrade: websocket", "Connection: Upgrade"];
  await expectStatus("a bad Sec-WebSocket-Key",
    [...base, "Sec-WebSocket-Key: short", "Sec-WebSocket-Version: 13"], 400);
  await expectStatus("no Sec-WebSocket-Version",
    [...base, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="], 426);
  await expectStatus("a plain GET", ["GET / HTTP/1.1", "Host: x"], 426);

  // The server still serves a well-behaved client after all that, and the one connected before.
  bystander.send("bystander");
  const bm = await nextMessage(bystander);
  if (bm.data.toString() !== "bystander") fail("echo to the client connected throughout");
  bystander.close(1000);
  const ws = await open();
  ws.send("still here");
  const m = await nextMessage(ws);
  if (m.data.toString() !== "still here") fail("echo after the violations");
  ws.close(1000);
  ok("a normal client is served after the violations");
}

async function toobig() {
  const ws = await open();
  const c = closed(ws);
  ws.send(Buffer.alloc(70000), { binary: true });
  const r = await c;
  if (r.code !== 1009) fail(`a 70000-byte message closed with ${r.code}, expected 1009`);
  ok("message above --max-message -> close 1009");
  // Fragments adding up past the limit, too.
  const ws2 = await open();
  const c2 = closed(ws2);
  for (let i = 0; i < 3; i++) ws2.send(Buffer.alloc(30000), { fin: false });
  const r2 = await c2;
  if (r2.code !== 1009) fail(`fragments over the limit closed with ${r2.code}`);
  ok("fragments above --max-message -> close 1009");
  // Random bytes (masked payloads are random anyway) in many frames: the server drops them
  // while it waits for our close, which must come back cleanly.
  const ws3 = await open();
  const c3 = closed(ws3);
  ws3.send(pattern(300000, 5), { binary: true });
  const r3 = await c3;
  if (r3.code !== 1009) fail(`a 300000-byte random message closed with ${r3.code}`);
  ok("random 300 kB message -> close 1009");
}

async function hold() {
  console.log("hold: starting");
  const clients = await Promise.all(Array.from({ length: 3 }, () => open()));
  console.log("hold: open");
  const ends = clients.map((w) => closed(w));
  for (const w of clients) {
    w.send("held");
    await nextMessage(w);
  }
  console.log("holding");
  await Promise.all(ends);
  ok("3 open WebSocket clients ended by the server's exit");
}

const modes = { echo, raw, toobig, hold };
const timer = setTimeout(() => fail(`${mode} took more than 120 s`), 120000);
modes[mode]()
  .then(() => {
    clearTimeout(timer);
    process.exit(0);
  })
  .catch((e) => fail(`${mode}: ${e.stack || e}`));
