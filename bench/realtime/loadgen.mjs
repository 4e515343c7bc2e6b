/**
 * Load generator for the real-time benchmark: simulated editors and viewers of one or more Yjs
 * documents, against CodeDraft (Socket.IO namespace /collab) or the Yjs reference server
 * (@y/websocket-server: raw y-websocket frames over ws). Both speak the same y-protocols sync
 * frames; only the transport differs.
 *
 *   node bench/realtime/loadgen.mjs '<json config>'
 *
 * Prints JSON lines on stdout: {"event":"ready"} once every connection is open and measuring
 * starts, then {"event":"result", ...}. Modes:
 *   latency     `typists` editors type `rate` edits/s into rooms[0] for `duration` s while
 *               `viewers` more watch; every receiver times each edit (send -> arrival).
 *   throughput  `senders` clients over all rooms send edits as fast as acknowledgements allow
 *               (at most `perSocketRate`/s each: the server's flood limit); counts acked edits.
 *   viewers     `viewers` clients spread over the rooms join, sync, and stay `hold` s.
 *   open        for each room: connect, join, send step 1, time until the document arrives.
 *   fill        (reference server only) one client per room sends `fillUpdates` edits and stays.
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { io } from 'socket.io-client'
import WebSocket from 'ws'

const config = JSON.parse(process.argv[2])
const MESSAGE_SYNC = 0
const SYNC_STEP1 = 0
const SYNC_STEP2 = 1
const SYNC_UPDATE = 2

const now = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

/** @param {Uint8Array} update */
function syncUpdateFrame (update) {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, MESSAGE_SYNC)
  encoding.writeVarUint(e, SYNC_UPDATE)
  encoding.writeVarUint8Array(e, update)
  return encoding.toUint8Array(e)
}

/** @param {Y.Doc} doc */
function step1Frame (doc) {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, MESSAGE_SYNC)
  encoding.writeVarUint(e, SYNC_STEP1)
  encoding.writeVarUint8Array(e, Y.encodeStateVector(doc))
  return encoding.toUint8Array(e)
}

/**
 * Read a sync frame far enough to identify it: sync type, and for an update the (client, clock)
 * of its first struct, which is how a receiver matches it to the send time.
 * @param {Uint8Array} frame
 */
function peek (frame) {
  const d = decoding.createDecoder(frame)
  if (decoding.readVarUint(d) !== MESSAGE_SYNC) return null
  const syncType = decoding.readVarUint(d)
  const payload = decoding.readVarUint8Array(d)
  if (syncType !== SYNC_UPDATE) return { syncType, payload, key: null }
  const u = decoding.createDecoder(payload)
  const groups = decoding.readVarUint(u)
  if (groups === 0) return { syncType, payload, key: null }
  decoding.readVarUint(u) // number of structs
  const client = decoding.readVarUint(u)
  const clock = decoding.readVarUint(u)
  return { syncType, payload, key: `${client}:${clock}` }
}

/** One connection to one room, over either server's transport. */
class Conn {
  constructor (room, cookie) {
    this.room = room
    this.cookie = cookie
    this.onFrame = (_frame) => {}
  }

  async open () {
    if (config.target === 'codedraft') {
      this.socket = io(`${config.url}/collab`, {
        transports: ['websocket'], forceNew: true, perMessageDeflate: config.deflate === false ? false : undefined, reconnection: false, extraHeaders: { Cookie: this.cookie }
      })
      this.socket.on('y', (data) => {
        if (data.clause === this.room) this.onFrame(new Uint8Array(data.msg))
      })
      await new Promise((resolve, reject) => {
        this.socket.once('connect', resolve)
        this.socket.once('connect_error', reject)
      })
      const ack = await this.socket.timeout(30000).emitWithAck('join', { clause: this.room })
      if (!ack.ok) throw new Error(`join refused: ${ack.error}`)
    } else {
      this.ws = new WebSocket(`${config.url}/${this.room}`)
      this.ws.binaryType = 'nodebuffer'
      this.ws.on('message', (data) => this.onFrame(new Uint8Array(data)))
      await new Promise((resolve, reject) => { this.ws.once('open', resolve); this.ws.once('error', reject) })
    }
  }

  /** Send a frame; resolves with true when the server acknowledged it as stored (CodeDraft), or
   * at once (the reference server has no acknowledgement). */
  async send (frame) {
    if (this.socket) {
      const ack = await this.socket.timeout(30000).emitWithAck('y', { clause: this.room, msg: frame })
      return ack.ok === true
    }
    this.ws.send(frame)
    return true
  }

  close () {
    if (this.socket) this.socket.disconnect()
    if (this.ws) this.ws.terminate()
  }
}

function percentile (sorted, p) {
  if (!sorted.length) return null
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
}

function cookieFor (i) { return config.cookies ? config.cookies[i % config.cookies.length] : '' }

async function openAll (count, roomOf, concurrency = 50) {
  const conns = []
  for (let start = 0; start < count; start += concurrency) {
    const batch = []
    for (let i = start; i < Math.min(count, start + concurrency); i++) {
      const conn = new Conn(roomOf(i), cookieFor(i))
      conns.push(conn)
      batch.push(conn.open())
    }
    await Promise.all(batch)
  }
  return conns
}

function cpuSince (start, startWall) {
  const used = process.cpuUsage(start)
  return (used.user + used.system) / 1000 / (now() - startWall)
}

async function latency () {
  const room = config.rooms[0]
  const sentAt = new Map()
  const samples = []
  let measuring = false
  const total = config.typists + config.viewers
  const conns = await openAll(total, () => room)
  for (const conn of conns) {
    conn.onFrame = (frame) => {
      const seen = peek(frame)
      if (!seen || !seen.key || !measuring) return
      const at = sentAt.get(seen.key)
      if (at !== undefined) samples.push(now() - at)
    }
  }
  const typists = conns.slice(0, config.typists).map((conn) => {
    const doc = new Y.Doc()
    return { conn, doc, text: doc.getText('body') }
  })
  await sleep(1000)
  out({ event: 'ready' })
  const cpu0 = process.cpuUsage()
  const wall0 = now()
  let sent = 0
  let failed = 0
  const end = now() + config.duration * 1000
  const warmupEnd = now() + (config.warmup || 2) * 1000
  const interval = 1000 / config.rate
  await Promise.all(typists.map(async (typist, index) => {
    await sleep(interval * index / typists.length) // spread the typists over the interval
    let next = now()
    while (now() < end) {
      measuring = now() > warmupEnd
      let update = null
      typist.doc.once('update', (u) => { update = u })
      typist.text.insert(typist.text.length, 'x')
      const frame = syncUpdateFrame(update)
      const seen = peek(frame)
      sentAt.set(seen.key, now())
      sent++
      typist.conn.send(frame).then((ok) => { if (!ok) failed++ }, () => { failed++ })
      next += interval
      const wait = next - now()
      if (wait > 0) await sleep(wait)
    }
  }))
  await sleep(1000)
  const generatorCpu = cpuSince(cpu0, wall0)
  conns.forEach((c) => c.close())
  samples.sort((a, b) => a - b)
  return {
    sent, failed, deliveries: samples.length, expected_deliveries: null,
    p50_ms: percentile(samples, 50), p99_ms: percentile(samples, 99), max_ms: samples[samples.length - 1] ?? null,
    generator_cpu: generatorCpu
  }
}

async function throughput () {
  const conns = await openAll(config.senders, (i) => config.rooms[i % config.rooms.length])
  // The reference server has no acknowledgement: count what one watcher per room receives.
  let relayed = 0
  const watchers = config.target === 'codedraft' ? [] : await openAll(config.rooms.length, (i) => config.rooms[i])
  for (const watcher of watchers) watcher.onFrame = (frame) => { const s = peek(frame); if (s && s.key) relayed++ }
  await sleep(500)
  out({ event: 'ready' })
  const cpu0 = process.cpuUsage()
  const wall0 = now()
  const end = now() + config.duration * 1000
  let acked = 0
  let refused = 0
  const gap = 1000 / config.perSocketRate
  await Promise.all(conns.map(async (conn) => {
    const doc = new Y.Doc()
    const text = doc.getText('body')
    while (now() < end) {
      const started = now()
      let update = null
      doc.once('update', (u) => { update = u })
      text.insert(text.length, 'y')
      try {
        if (await conn.send(syncUpdateFrame(update))) acked++; else refused++
      } catch { refused++ }
      const wait = gap - (now() - started)
      if (wait > 0) await sleep(wait)
    }
  }))
  const seconds = (now() - wall0) / 1000
  await sleep(500)
  const generatorCpu = cpuSince(cpu0, wall0)
  conns.concat(watchers).forEach((c) => c.close())
  const count = config.target === 'codedraft' ? acked : relayed
  return { acked, refused, relayed, seconds, updates_per_s: count / seconds, generator_cpu: generatorCpu }
}

async function viewers () {
  const conns = await openAll(config.viewers, (i) => config.rooms[i % config.rooms.length])
  let synced = 0
  await Promise.all(conns.map(async (conn) => {
    const doc = new Y.Doc()
    const done = new Promise((resolve) => {
      conn.onFrame = (frame) => {
        const seen = peek(frame)
        if (seen && seen.syncType === SYNC_STEP2) { Y.applyUpdate(doc, seen.payload); resolve() }
      }
    })
    await conn.send(step1Frame(doc))
    await done
    synced++
  }))
  out({ event: 'ready' })
  await sleep(config.hold * 1000)
  conns.forEach((c) => c.close())
  return { connected: conns.length, synced }
}

async function openTimes () {
  const times = []
  let length = 0
  for (const room of config.rooms) {
    const started = now()
    const conn = new Conn(room, cookieFor(times.length))
    const doc = new Y.Doc()
    const done = new Promise((resolve) => {
      conn.onFrame = (frame) => {
        const seen = peek(frame)
        if (seen && seen.syncType === SYNC_STEP2) { Y.applyUpdate(doc, seen.payload); resolve() }
      }
    })
    await conn.open()
    await conn.send(step1Frame(doc))
    await done
    times.push(now() - started)
    length = doc.getText('body').length
    conn.close()
  }
  return { times_ms: times, median_ms: [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)], text_length: length }
}

async function fill () {
  const keep = []
  for (const room of config.rooms) {
    const conn = new Conn(room, '')
    await conn.open()
    const doc = new Y.Doc()
    const text = doc.getText('body')
    for (let i = 0; i < config.fillUpdates; i++) {
      let update = null
      doc.once('update', (u) => { update = u })
      text.insert(text.length, 'z')
      await conn.send(syncUpdateFrame(update))
      if (i % 500 === 0) await sleep(1) // let the socket drain
    }
    keep.push(conn)
  }
  out({ event: 'ready' })
  await sleep(config.hold * 1000) // the reference server forgets a document when its last client leaves
  keep.forEach((c) => c.close())
  return { filled: config.rooms.length }
}

const modes = { latency, throughput, viewers, open: openTimes, fill }
try {
  const result = await modes[config.mode]()
  out({ event: 'result', ...result })
  process.exit(0)
} catch (err) {
  out({ event: 'error', error: String(err && err.stack ? err.stack : err) })
  process.exit(1)
}
