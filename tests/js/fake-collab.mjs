/**
 * An in-memory stand-in for the /collab Socket.IO namespace, for testing ClauseProvider without
 * a server: FakeCollabServer keeps one Y.Doc per clause (what the real server persists), relays
 * updates and awareness to the other members of the clause and acknowledges; FakeSocket has the
 * emit/on/off/connected surface of a socket.io-client Socket.
 *
 * Every message (both directions, acks included) goes through one FIFO queue and is delivered
 * only by deliver()/flush(), so tests control timing exactly. A disconnect or a server restart
 * drops whatever was in flight on that connection, as a dead TCP connection would.
 */
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import {
  MESSAGE_AWARENESS,
  MESSAGE_SYNC,
  SYNC_STEP1,
  encodeSyncStep1,
  encodeSyncUpdate,
  isEmptyUpdate,
  toBytes
} from '../../static/src/collab/framing.js'

export class FakeCollabServer {
  constructor () {
    /** Clause documents, as persisted: they survive restart(). @type {Map<string, Y.Doc>} */
    this.docs = new Map()
    /** @type {Array<{socket: FakeSocket, epoch: number, run: () => void}>} */
    this.queue = []
    /** @type {Set<FakeSocket>} */
    this.sockets = new Set()
    /** Every event the server received, in order: {from, event, kind?}. */
    this.log = []
    /** Clause uids a join is refused for, with the reason. @type {Map<string, string>} */
    this.refuse = new Map()
    /** When true, the server stores updates but the acks are lost on the way back. */
    this.loseAcks = false
    /** The next non-empty update is refused with this reason and not stored (e.g. database busy). */
    this.failNext = ''
    /** The next non-empty update is held ("resync": the server asks for what it builds on). */
    this.deferNext = false
    /**
     * When true, what one client sends is stored and acknowledged but never relayed to the
     * others, as when the message queue between server processes is down.
     */
    this.loseBroadcasts = false
    /** Number of updates the server stored that changed its doc (duplicates excluded). */
    this.storedUpdates = 0
  }

  /**
   * @param {string} clause
   * @returns {Y.Doc} the server's doc for the clause, created on first use.
   */
  doc (clause) {
    let doc = this.docs.get(clause)
    if (!doc) {
      doc = new Y.Doc()
      this.docs.set(clause, doc)
    }
    return doc
  }

  /**
   * A new client socket, already connected (like io() once the handshake is done).
   *
   * @param {string} name
   * @param {{readonly?: boolean, color?: string}} [options]
   * @returns {FakeSocket}
   */
  connectClient (name, { readonly = false, color = '#336699' } = {}) {
    const socket = new FakeSocket(this, name, { readonly, color })
    this.sockets.add(socket)
    socket.connected = true
    return socket
  }

  /**
   * Queue `run` on behalf of a connection; it is dropped if that connection ends first.
   *
   * @param {FakeSocket} socket
   * @param {() => void} run
   */
  enqueue (socket, run) {
    this.queue.push({ socket, epoch: socket.epoch, run })
  }

  /**
   * Deliver the next queued message.
   * @returns {boolean} false when nothing was queued.
   */
  deliver () {
    const item = this.queue.shift()
    if (!item) return false
    if (item.socket.connected && item.socket.epoch === item.epoch) item.run()
    return true
  }

  /**
   * Deliver until the queue is empty.
   * @param {number} [limit] guard against a message storm
   * @returns {number} how many were delivered
   * @throws {Error} when the queue does not drain within limit.
   */
  flush (limit = 100000) {
    let count = 0
    while (this.deliver()) {
      if (++count > limit) throw new Error('message storm: queue did not drain')
    }
    return count
  }

  /**
   * Simulate a crash and restart: everything in flight is lost, every client is disconnected
   * (they reconnect with reconnect()), the persisted docs stay.
   */
  restart () {
    this.queue = []
    for (const socket of this.sockets) {
      if (socket.connected) socket.drop()
    }
  }

  /**
   * Change a member's role on a clause and tell it, as the server does on a permission change.
   *
   * @param {FakeSocket} socket
   * @param {string} clause
   * @param {boolean} readonly
   */
  setRole (socket, clause, readonly) {
    socket.readonly = readonly
    this.toClient(socket, 'role', { clause, readonly })
  }

  /**
   * @param {FakeSocket} socket
   * @param {string} event
   * @param {any} payload
   */
  toClient (socket, event, payload) {
    this.enqueue(socket, () => socket.receive(event, payload))
  }

  /**
   * @param {FakeSocket} socket
   * @param {Function | undefined} ack
   * @param {any} response
   */
  ackClient (socket, ack, response) {
    if (typeof ack !== 'function' || this.loseAcks) return
    this.enqueue(socket, () => ack(response))
  }

  /**
   * Handle one client event, in the fixed order: authorise, validate, apply, acknowledge, broadcast.
   *
   * @param {FakeSocket} socket
   * @param {string} event
   * @param {any} payload
   * @param {Function | undefined} ack
   */
  handle (socket, event, payload, ack) {
    const entry = { from: socket.name, event }
    this.log.push(entry)
    if (event === 'join') return this.handleJoin(socket, payload, ack)
    if (event === 'leave') {
      socket.clauses.delete(payload.clause)
      return
    }
    if (event !== 'y') return this.ackClient(socket, ack, { ok: false, error: 'unknown event' })
    const { clause } = payload
    if (!socket.clauses.has(clause)) return this.ackClient(socket, ack, { ok: false, error: 'not joined' })
    const bytes = toBytes(payload.msg)
    const decoder = decoding.createDecoder(bytes)
    const type = decoding.readVarUint(decoder)
    if (type === MESSAGE_AWARENESS) {
      entry.kind = 'awareness'
      this.broadcast(socket, clause, bytes)
      return this.ackClient(socket, ack, { ok: true })
    }
    if (type !== MESSAGE_SYNC) return this.ackClient(socket, ack, { ok: false, error: 'bad frame' })
    const step = decoding.readVarUint(decoder)
    const doc = this.doc(clause)
    if (step === SYNC_STEP1) {
      entry.kind = 'step1'
      const reply = encoding.createEncoder()
      encoding.writeVarUint(reply, MESSAGE_SYNC)
      syncProtocol.writeSyncStep2(reply, doc, decoding.readVarUint8Array(decoder))
      this.toClient(socket, 'y', { clause, msg: encoding.toUint8Array(reply) })
      return this.ackClient(socket, ack, { ok: true })
    }
    entry.kind = step === syncProtocol.messageYjsSyncStep2 ? 'step2' : 'update'
    const update = decoding.readVarUint8Array(decoder)
    if (isEmptyUpdate(update)) return this.ackClient(socket, ack, { ok: true })
    if (socket.readonly) {
      // As the real server: the role first, then the refusal.
      this.toClient(socket, 'role', { clause, readonly: true })
      return this.ackClient(socket, ack, { ok: false, error: 'read-only' })
    }
    if (this.failNext) {
      const error = this.failNext
      this.failNext = ''
      return this.ackClient(socket, ack, { ok: false, error })
    }
    if (this.deferNext) {
      this.deferNext = false
      this.toClient(socket, 'y', { clause, msg: encodeSyncStep1(doc) })
      return this.ackClient(socket, ack, { ok: false, error: 'Held until earlier edits arrive; send them first.', resync: true })
    }
    const before = Y.encodeStateVector(doc)
    Y.applyUpdate(doc, update, socket)
    if (!equalBytes(before, Y.encodeStateVector(doc))) this.storedUpdates++
    // Relay even what is held: whatever of it did integrate must reach the others, and they can
    // hold the rest themselves until the missing part arrives.
    this.broadcast(socket, clause, encodeSyncUpdate(update), { packed: true })
    if (doc.store.pendingStructs !== null || doc.store.pendingDs !== null) {
      // As the real server: an update that builds on something missing is held, and the sender
      // is asked (with a step 1) for what is missing. (Conservative: anything held counts.)
      this.toClient(socket, 'y', { clause, msg: encodeSyncStep1(doc) })
      return this.ackClient(socket, ack, { ok: false, error: 'Held until earlier edits arrive; send them first.', resync: true })
    }
    this.ackClient(socket, ack, { ok: true })
  }

  /**
   * @param {FakeSocket} socket
   * @param {any} payload
   * @param {Function | undefined} ack
   */
  handleJoin (socket, payload, ack) {
    const clause = payload && payload.clause
    if (this.refuse.has(clause)) return this.ackClient(socket, ack, { ok: false, error: this.refuse.get(clause) })
    socket.clauses.add(clause)
    // As the real server: its step 1 first, then the ack.
    this.toClient(socket, 'y', { clause, msg: encodeSyncStep1(this.doc(clause)) })
    this.ackClient(socket, ack, { ok: true, readonly: socket.readonly, user: { name: socket.name, color: socket.color } })
  }

  /**
   * @param {FakeSocket} from
   * @param {string} clause
   * @param {Uint8Array} frame
   */
  broadcast (from, clause, frame, { packed = false } = {}) {
    if (this.loseBroadcasts) return
    // Edits go out as the real server sends them: {clause, frames}, each frame length-prefixed.
    const payload = packed ? { clause, frames: packFrames([frame]) } : { clause, msg: frame }
    for (const other of this.sockets) {
      if (other !== from && other.connected && other.clauses.has(clause)) {
        this.toClient(other, 'y', payload)
      }
    }
  }
}

/**
 * Frames one after another, each as a varuint length and its bytes (the server's "frames").
 * @param {Uint8Array[]} frames
 */
export function packFrames (frames) {
  const e = encoding.createEncoder()
  for (const frame of frames) encoding.writeVarUint8Array(e, frame)
  return encoding.toUint8Array(e)
}

/**
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 */
function equalBytes (a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i])
}

export class FakeSocket {
  /**
   * @param {FakeCollabServer} server
   * @param {string} name
   * @param {{readonly: boolean, color: string}} options
   */
  constructor (server, name, { readonly, color }) {
    this.server = server
    this.name = name
    this.readonly = readonly
    this.color = color
    this.connected = false
    /** Bumped per connection; queued messages of an older connection are dropped. */
    this.epoch = 0
    /** Clauses joined on the current connection (server side state). @type {Set<string>} */
    this.clauses = new Set()
    /** @type {Map<string, Set<Function>>} */
    this.handlers = new Map()
    /** Emits attempted while disconnected (a provider should not do that). */
    this.emitsWhileOffline = 0
    /** Every event this client emitted: {event, kind?}. */
    this.sent = []
  }

  /**
   * @param {string} event
   * @param {Function} fn
   */
  on (event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set())
    this.handlers.get(event).add(fn)
    return this
  }

  /**
   * @param {string} event
   * @param {Function} fn
   */
  off (event, fn) {
    this.handlers.get(event)?.delete(fn)
    return this
  }

  /**
   * @param {string} event
   * @param {any} payload
   * @param {Function} [ack]
   */
  emit (event, payload, ack) {
    if (!this.connected) {
      this.emitsWhileOffline++
      return this
    }
    this.sent.push({ event, payload })
    this.server.enqueue(this, () => this.server.handle(this, event, payload, ack))
    return this
  }

  /**
   * Deliver a server event to this client's handlers.
   * @param {string} event
   * @param {...any} args
   */
  receive (event, ...args) {
    for (const fn of [...(this.handlers.get(event) ?? [])]) fn(...args)
  }

  /** The connection dies (network or server): in-flight messages are lost. */
  drop () {
    if (!this.connected) return
    this.connected = false
    this.epoch++
    this.clauses.clear()
    this.receive('disconnect', 'transport close')
  }

  /** socket.io-client's automatic reconnection succeeded. */
  reconnect () {
    if (this.connected) return
    this.connected = true
    this.epoch++
    this.receive('connect')
  }
}
