// ShareDB with its in-memory database and pub/sub, ot-text-unicode registered, one JSON stream
// per WebSocket (the usual @teamwork/websocket-json-stream setup).
// Usage: node sharedb_server.cjs HOST PORT
const http = require('http')
const WebSocket = require('ws')
const ShareDB = require('sharedb')
const WebSocketJSONStream = require('@teamwork/websocket-json-stream')

ShareDB.types.register(require('ot-text-unicode').type)
const [host, port] = [process.argv[2] || '127.0.0.1', Number(process.argv[3] || 1234)]
const backend = new ShareDB()
const server = http.createServer((req, res) => { res.writeHead(200); res.end('ok') })
const wss = new WebSocket.Server({ server })
wss.on('connection', (ws) => {
  const stream = new WebSocketJSONStream(ws)
  stream.on('error', () => ws.close())
  backend.listen(stream)
})
server.listen(port, host, () => console.log(`sharedb listening on ${host}:${port}`))
