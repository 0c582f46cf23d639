// Hocuspocus with its defaults and no extensions (nothing stored).
// Usage: node hocuspocus_server.cjs HOST PORT
const { Server } = require('@hocuspocus/server')

const [host, port] = [process.argv[2] || '127.0.0.1', Number(process.argv[3] || 1234)]
const server = new Server({ address: host, port, quiet: true })
server.listen().then(() => console.log(`hocuspocus listening on ${host}:${port}`))
