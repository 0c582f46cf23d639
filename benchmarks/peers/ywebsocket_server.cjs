// y-websocket's reference server (@y/websocket-server), as its own bin/server.js sets it up:
// one Y.Doc per URL path, no persistence.  Usage: node ywebsocket_server.cjs HOST PORT
const http = require('http')
const WebSocket = require('ws')
const { setupWSConnection } = require('@y/websocket-server/utils')

const [host, port] = [process.argv[2] || '127.0.0.1', Number(process.argv[3] || 1234)]
const server = http.createServer((req, res) => { res.writeHead(200); res.end('ok') })
const wss = new WebSocket.Server({ noServer: true })
wss.on('connection', setupWSConnection)
server.on('upgrade', (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req))
})
server.listen(port, host, () => console.log(`y-websocket listening on ${host}:${port}`))
