// Baileys side of `cargo bench --bench peer` (issue 21): N Baileys sockets against the fake
// WhatsApp's loopback WebSocket. Speaks lines on stdout with the bench (which hosts the fake
// and plays its phones):
//   QR <i> <qr-string>      socket i shows a QR code; the bench has phone i scan it
//   PAIRED <i>              socket i finished pairing (after the 515 restart, logged in)
//   MSG <i> <from> <text>   socket i received a text
//   RESULT key=value ...    the measurements, last line
// Reads commands on stdin: `SEND <i> <phone> <text>` sends a text from socket i; `IDLE`
// starts the idle window (the bench sends it to both sides at once).
// Env: PEER_WS_URL, PEER_PHONES (comma-separated, one per socket), PEER_DIR (auth state),
// PEER_IDLE_MS, PEER_LOG (pino level, default silent).
import makeWASocket, { useMultiFileAuthState, DisconnectReason, Browsers } from 'baileys'
import pino from 'pino'
import { createInterface } from 'node:readline'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

const url = process.env.PEER_WS_URL
const phones = (process.env.PEER_PHONES || '').split(',').filter(Boolean)
const dir = process.env.PEER_DIR || '/tmp/peer-baileys'
const idleMs = Number(process.env.PEER_IDLE_MS || 10000)
const logger = pino({ level: process.env.PEER_LOG || 'silent' }, pino.destination(2))
const say = (line) => process.stdout.write(line + '\n')
const sockets = new Array(phones.length)

function rssKib() {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))
  return m ? Number(m[1]) : 0
}

// One socket i on its stored state; resolves when it is logged in. A 515 after pairing
// (restart required: Baileys `socket.ts`, `pair-success`) opens a new socket on the same
// state, as Baileys' own example does.
function connect(i, announcePaired) {
  return new Promise(async (resolve, reject) => {
    const { state, saveCreds } = await useMultiFileAuthState(join(dir, String(i)))
    const start = () => {
      const sock = makeWASocket({
        waWebSocketUrl: url,
        auth: state,
        logger,
        browser: Browsers.ubuntu('Chrome'),
        printQRInTerminal: false,
        markOnlineOnConnect: false,
        syncFullHistory: false,
        shouldSyncHistoryMessage: () => false,
        fireInitQueries: false,
        connectTimeoutMs: 60000,
      })
      sockets[i] = sock
      sock.ev.on('creds.update', saveCreds)
      sock.ev.on('connection.update', (u) => {
        if (u.qr) say(`QR ${i} ${u.qr}`)
        if (u.connection === 'open') {
          if (announcePaired) say(`PAIRED ${i}`)
          resolve(sock)
        }
        if (u.connection === 'close') {
          const code = u.lastDisconnect?.error?.output?.statusCode
          if (code === DisconnectReason.restartRequired) start()
          else if (!sock.__ended) reject(new Error(`socket ${i} closed: ${code} ${u.lastDisconnect?.error?.message}`))
        }
      })
      sock.ev.on('messages.upsert', ({ messages }) => {
        for (const m of messages) {
          const text = m.message?.conversation || m.message?.extendedTextMessage?.text
          if (text && !m.key.fromMe) say(`MSG ${i} ${m.key.remoteJid} ${text}`)
        }
      })
    }
    start()
  })
}

async function main() {
  const base = rssKib()
  // Pair all, then drop every socket and log in again from the stored credentials.
  await Promise.all(phones.map((_, i) => connect(i, true)))
  for (const s of sockets) { s.__ended = true; s.end(undefined) }
  await new Promise((r) => setTimeout(r, 500))
  const t0 = Date.now()
  await Promise.all(phones.map((_, i) => connect(i, false)))
  const connectMs = Date.now() - t0
  say(`LOGGEDIN ${phones.length}`)
  const rl = createInterface({ input: process.stdin })
  let go
  const idleStart = new Promise((r) => { go = r })
  rl.on('line', async (line) => {
    const [cmd, i, to, ...text] = line.split(' ')
    if (cmd === 'IDLE') go()
    if (cmd === 'SEND') {
      try {
        await sockets[Number(i)].sendMessage(`${to}@s.whatsapp.net`, { text: text.join(' ') })
        say(`SENT ${i}`)
      } catch (e) { say(`SENDFAILED ${i} ${String(e?.message || e).replace(/\s+/g, ' ')}`) }
    }
  })
  await idleStart
  // Idle: measured from here.
  const cpu0 = process.cpuUsage()
  const t1 = Date.now()
  await new Promise((r) => setTimeout(r, idleMs))
  const cpu = process.cpuUsage(cpu0)
  const idle = Date.now() - t1
  const rss = rssKib()
  say(`RESULT n=${phones.length} rss_kib=${rss} base_rss_kib=${base} idle_ms=${idle} idle_cpu_ms=${Math.round((cpu.user + cpu.system) / 1000)} connect_ms=${connectMs}`)
  rl.close()
  for (const s of sockets) { s.__ended = true; s.end(undefined) }
  setTimeout(() => process.exit(0), 200)
}

main().catch((e) => { say(`ERROR ${String(e?.stack || e).replace(/\s+/g, ' ')}`); process.exit(1) })
