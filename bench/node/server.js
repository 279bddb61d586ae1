// The Node baseline of the fan-out benchmark (bench/fanout.py): a minimal socket.io server
// that, on an HTTP trigger, emits the app's `notification` event to every connected socket.
//
//   node bench/node/server.js PORT
//
// POST /emit with a JSON body {"template": <a notification the app sent>, "need_id": K}: each
// connected socket gets a copy of the template with its own notification id (the app's
// payloads differ per recipient too) and need.id = K, so the event has the same shape and size
// as the app's. Each socket is emitted to separately, so every payload is
// encoded per socket -- the same work per recipient the app's events need. Answers 200
// {"sockets": N} after the last emit was queued.
// GET /ready answers 200 once listening. No authentication: the load client is all it serves.

"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

const port = Number(process.argv[2] || 0);
let nextId = 1;

const httpServer = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/ready") {
    res.writeHead(200, { "Content-Type": "application/json" });
    res.end(JSON.stringify({ sockets: io.of("/").sockets.size }));
    return;
  }
  if (req.method === "POST" && req.url === "/emit") {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const { template, need_id: needId } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      const need = template.data.need;
      let i = 0;
      for (const socket of io.of("/").sockets.values()) {
        socket.emit("notification", {
          ...template,
          id: nextId++,
          data: { ...template.data, need: { ...need, id: needId } },
        });
        i += 1;
      }
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ sockets: i }));
    });
    return;
  }
  res.writeHead(404);
  res.end();
});

const io = new Server(httpServer, { serveClient: false }); // polling and WebSocket, as the app

httpServer.listen(port, "127.0.0.1", () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});
