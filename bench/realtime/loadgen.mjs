/**
 * Load generator for the real-time benchmark: simulated editors and viewers of one or more Yjs
 * documents, against CodeDraft (Socket.IO namespace /collab) or the Yjs reference server
 * (@y/websocket-server: raw y-websocket frames over ws). Both speak the same y-protocols sync
 * frames; only the transport differs.
 *
 *   node bench/realtime/loadgen.mjs '<json config>'
 *
 * Connection i goes to `urls[i % urls.length]` when `urls` is given (several server processes),
 * otherwise to `url`; with `routeByClause`, every connection of a clause goes to the process a
 * hash of the clause picks, as deploy/nginx.conf's `hash $arg_clause` routes browsers (the
 * clause is in every CodeDraft connection's query, as the browser sends it). A join answered with
 * `redirect` (owner routing) is made again there.
 *
 * Prints JSON lines on stdout: {"event":"ready"} once every connection is open and measuring
 * starts, {"event":"measured"} (latency mode) when the measured window ends, then
 * {"event":"result", ...}. Modes:
 *   latency     `typists` editors type `rate` edits/s into rooms[0] for `duration` s while
 *               `viewers` more watch; every receiver times each edit (send -> arrival). After
 *               the window, every acknowledgement is awaited and `settle` s (default 2) allowed
 *               for the last broadcasts; then each client applies all it received to its own
 *               replica, and the result counts the clients per final text (`texts`: sha256
 *               prefix -> clients): one entry means every client converged. With `window` (s),
 *               also `windows`: [{start_s, deliveries, p50_ms, p99_ms}], the deliveries grouped
 *               by when their edit was sent (start_s counted from the end of the warm-up), so a
 *               long run shows whether latency degrades over time.
 * Latency and throughput results count why edits were not stored (`failures`: reason -> count).
 *   throughput  `senders` clients over all rooms send edits as fast as acknowledgements allow
 *               (at most `perSocketRate`/s each: the server's flood limit); counts acked edits.
 *   viewers     `viewers` clients spread over the rooms join, sync, and stay `hold` s.
 *   open        for each room: connect, join, send step 1, time until the document arrives.
 *   fill        (reference server only) one client per room sends `fillUpdates` edits and stays.
 * Every result (and an error) counts the CodeDraft connections that ended without our asking
 * (`disconnects`: Socket.IO's reason -> count, plus `connect_error: ...` after connecting); such
 * a client stops receiving, so in latency mode it also shows up as a text of its own.
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'
import { createHash } from 'node:crypto'
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

/** Why edits were not acknowledged as stored: the server's reason or the client's error -> count. */
const failures = {}
function noteFailure (reason) { failures[reason] = (failures[reason] || 0) + 1 }

/** Connections lost without our close(): reason -> count. Without it a client that silently
 * dropped out would only be missing from the deliveries, and a run could look healthy. */
const disconnects = {}
function noteDisconnect (reason) { disconnects[reason] = (disconnects[reason] || 0) + 1 }

/** One connection to one room on one server, over either server's transport. */
class Conn {
  constructor (room, cookie, url) {
    this.room = room
    this.cookie = cookie
    this.url = url
    this.closing = false
    this.onFrame = (_frame) => {}
  }

  async open () {
    if (config.target === 'codedraft') {
      this.socket = io(`${this.url}/collab`, {
        transports: ['websocket'], forceNew: true, query: { clause: this.room }, perMessageDeflate: config.deflate === false ? false : undefined, reconnection: false, extraHeaders: { Cookie: this.cookie }
      })
      this.socket.on('y', (data) => {
        if (data.clause !== this.room) return
        if (data.frames === undefined) return this.onFrame(new Uint8Array(data.msg))
        // A broadcast of edits: several frames, each a varuint length and its bytes.
        const d = decoding.createDecoder(new Uint8Array(data.frames))
        while (decoding.hasContent(d)) this.onFrame(decoding.readVarUint8Array(d))
      })
      this.socket.on('disconnect', (reason) => { if (!this.closing) noteDisconnect(reason) })
      await new Promise((resolve, reject) => {
        this.socket.once('connect', resolve)
        this.socket.once('connect_error', reject)
      })
      // Before connecting, a connect_error fails open(); after it, it is a lost connection.
      this.socket.on('connect_error', (err) => noteDisconnect(`connect_error: ${err.message}`))
      const ack = await this.socket.timeout(30000).emitWithAck('join', { clause: this.room })
      if (!ack.ok && ack.redirect && !this.redirected) {
        // Owner routing: another process serves this clause; connect there instead.
        this.closing = true
        this.socket.disconnect()
        this.closing = false
        this.url = ack.redirect
        this.redirected = true
        return this.open()
      }
      if (!ack.ok) throw new Error(`join refused: ${ack.error}`)
    } else {
      this.ws = new WebSocket(`${this.url}/${this.room}`)
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
      if (ack.ok !== true) noteFailure(String(ack.error))
      return ack.ok === true
    }
    this.ws.send(frame)
    return true
  }

  close () {
    this.closing = true // our own disconnect is not counted as a lost connection
    if (this.socket) this.socket.disconnect()
    if (this.ws) this.ws.terminate()
  }
}

function percentile (sorted, p) {
  if (!sorted.length) return null
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
}

/**
 * Per `config.window` seconds of the measured run: how many deliveries, and their percentiles.
 * Every window of the run is listed, an empty one too: no deliveries at all is the worst news.
 */
function latencyWindows (buckets, measuredMs) {
  const count = Math.max(buckets.length, Math.ceil(measuredMs / (config.window * 1000)))
  return Array.from({ length: count }, (_, index) => {
    const sorted = (buckets[index] || []).sort((a, b) => a - b)
    return {
      start_s: index * config.window, deliveries: sorted.length,
      p50_ms: percentile(sorted, 50), p99_ms: percentile(sorted, 99)
    }
  })
}

function cookieFor (i) { return config.cookies ? config.cookies[i % config.cookies.length] : '' }

/**
 * Where connection `i`, for clause `room`, goes. By clause: FNV-1a of the uid picks the process;
 * not nginx's own hash, but the same property (one process for all of a clause's connections).
 */
function urlFor (i, room) {
  if (!config.urls) return config.url
  if (!config.routeByClause) return config.urls[i % config.urls.length]
  let hash = 0x811c9dc5
  for (const char of room) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0
  return config.urls[hash % config.urls.length]
}

async function openAll (count, roomOf, concurrency = 50) {
  const conns = []
  for (let start = 0; start < count; start += concurrency) {
    const batch = []
    for (let i = start; i < Math.min(count, start + concurrency); i++) {
      const conn = new Conn(roomOf(i), cookieFor(i), urlFor(i, roomOf(i)))
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

/** The character typist `index` types: one of its own, so the final text's order is checked too. */
function typistMark (index) {
  const marks = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
  return marks[index % marks.length]
}

/**
 * Each client's replica after applying everything it received (a typist's own edits are already
 * in its document); counts clients per final text, keyed by a sha256 prefix of the text.
 */
function finalTexts (conns, typists, received) {
  const texts = {}
  conns.forEach((_conn, index) => {
    const doc = index < typists.length ? typists[index].doc : new Y.Doc()
    Y.transact(doc, () => { for (const update of received[index]) Y.applyUpdate(doc, update) })
    const text = doc.getText('body').toString()
    const hash = createHash('sha256').update(text).digest('hex').slice(0, 16)
    texts[hash] = texts[hash] || { clients: 0, length: text.length }
    texts[hash].clients++
  })
  return texts
}

async function latency () {
  const room = config.rooms[0]
  const sentAt = new Map()
  const samples = []
  // With `window`: the same latencies, grouped by the window their edit was sent in.
  const buckets = []
  const windowMs = config.window ? config.window * 1000 : 0
  let warmupEnd = Infinity
  let measuring = false
  const total = config.typists + config.viewers
  const conns = await openAll(total, () => room)
  // Every document frame each client receives, applied after the measured window (applying
  // them as they arrive would load the generator while it times deliveries).
  const received = conns.map(() => [])
  conns.forEach((conn, index) => {
    conn.onFrame = (frame) => {
      const seen = peek(frame)
      if (!seen) return
      if (seen.syncType !== SYNC_STEP1) received[index].push(seen.payload)
      if (!seen.key || !measuring) return
      const at = sentAt.get(seen.key)
      if (at === undefined) return
      const took = now() - at
      samples.push(took)
      if (windowMs) {
        const index = Math.max(0, Math.floor((at - warmupEnd) / windowMs))
        if (!buckets[index]) buckets[index] = []
        buckets[index].push(took)
      }
    }
  })
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
  const acks = []
  const end = now() + config.duration * 1000
  warmupEnd = now() + (config.warmup || 2) * 1000
  const interval = 1000 / config.rate
  await Promise.all(typists.map(async (typist, index) => {
    await sleep(interval * index / typists.length) // spread the typists over the interval
    const mark = typistMark(index)
    let next = now()
    while (now() < end) {
      measuring = now() > warmupEnd
      let update = null
      typist.doc.once('update', (u) => { update = u })
      typist.text.insert(typist.text.length, mark)
      const frame = syncUpdateFrame(update)
      const seen = peek(frame)
      sentAt.set(seen.key, now())
      sent++
      acks.push(typist.conn.send(frame).then((ok) => { if (!ok) failed++ },
        (err) => { failed++; noteFailure(String(err.message)) }))
      next += interval
      const wait = next - now()
      if (wait > 0) await sleep(wait)
    }
  }))
  await sleep(1000)
  measuring = false
  const generatorCpu = cpuSince(cpu0, wall0)
  out({ event: 'measured' })
  await Promise.all(acks)
  await sleep((config.settle ?? 2) * 1000)
  conns.forEach((c) => c.close())
  samples.sort((a, b) => a - b)
  const result = {
    sent, failed, deliveries: samples.length, expected_deliveries: null,
    p50_ms: percentile(samples, 50), p99_ms: percentile(samples, 99), max_ms: samples[samples.length - 1] ?? null,
    generator_cpu: generatorCpu, failures, texts: finalTexts(conns, typists, received)
  }
  if (windowMs) result.windows = latencyWindows(buckets, end - warmupEnd)
  return result
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
      } catch (err) { refused++; noteFailure(String(err.message)) }
      const wait = gap - (now() - started)
      if (wait > 0) await sleep(wait)
    }
  }))
  const seconds = (now() - wall0) / 1000
  await sleep(500)
  const generatorCpu = cpuSince(cpu0, wall0)
  conns.concat(watchers).forEach((c) => c.close())
  const count = config.target === 'codedraft' ? acked : relayed
  return { acked, refused, relayed, seconds, updates_per_s: count / seconds, generator_cpu: generatorCpu, failures }
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
    const conn = new Conn(room, cookieFor(times.length), urlFor(times.length, room))
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
    const conn = new Conn(room, '', config.url)
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
  out({ event: 'result', ...result, disconnects })
  process.exit(0)
} catch (err) {
  out({ event: 'error', error: String(err && err.stack ? err.stack : err), disconnects })
  process.exit(1)
}
