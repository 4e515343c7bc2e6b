import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as Y from 'yjs'
import { Awareness, applyAwarenessUpdate } from 'y-protocols/awareness'
import {
  MESSAGE_AWARENESS,
  MESSAGE_SYNC,
  SYNC_STEP1,
  SYNC_STEP2,
  SYNC_UPDATE,
  decodeFrame,
  encodeAwarenessFrame,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeSyncUpdate,
  frameKind,
  isEmptyUpdate,
  toBytes
} from '../../static/src/collab/framing.js'

test('step 1 of an empty clause is the exact y-websocket bytes the server expects', () => {
  const doc = new Y.Doc()
  // type sync (0), step 1 (0), state vector as a var-length array: length 1, zero clients.
  assert.deepEqual([...encodeSyncStep1(doc)], [0, 0, 1, 0])
})

test('a sync update frame is type 0, sub-type 2, then the update as a var-length array', () => {
  const doc = new Y.Doc()
  let update = null
  doc.on('update', (u) => { update = u })
  doc.getText('body').insert(0, 'Measure 1.1')
  const frame = encodeSyncUpdate(update)
  assert.equal(frame[0], MESSAGE_SYNC)
  assert.equal(frame[1], SYNC_UPDATE)
  const decoded = decodeFrame(frame)
  assert.equal(decoded.syncStep, SYNC_UPDATE)
  assert.deepEqual([...decoded.payload], [...update])
  assert.equal(frameKind(frame), 'update')
})

test('step 2 carries exactly what the peer lacks, emoji and combining marks included', () => {
  const server = new Y.Doc()
  const text = 'Signatories 👩🏽‍💻 shall notify; re\u0301sume\u0301'
  server.getText('body').insert(0, text)
  const client = new Y.Doc()
  const step1 = decodeFrame(encodeSyncStep1(client))
  assert.equal(step1.syncStep, SYNC_STEP1)
  const step2 = decodeFrame(encodeSyncStep2(server, step1.payload))
  assert.equal(step2.syncStep, SYNC_STEP2)
  Y.applyUpdate(client, step2.payload)
  assert.equal(client.getText('body').toString(), text)
  // Once in sync, a step 2 against the client's state vector holds nothing new.
  const nothing = decodeFrame(encodeSyncStep2(server, Y.encodeStateVector(client)))
  assert.equal(isEmptyUpdate(nothing.payload), true)
  assert.equal(isEmptyUpdate(step2.payload), false)
})

test('an awareness frame round-trips a participant state', () => {
  const a = new Awareness(new Y.Doc())
  const b = new Awareness(new Y.Doc())
  try {
    a.setLocalStateField('user', { name: 'Chair', color: '#aa3377' })
    const frame = encodeAwarenessFrame(a, [a.clientID])
    const decoded = decodeFrame(frame)
    assert.equal(decoded.type, MESSAGE_AWARENESS)
    assert.equal(frameKind(frame), 'awareness')
    applyAwarenessUpdate(b, decoded.payload, 'test')
    assert.deepEqual(b.getStates().get(a.clientID), { user: { name: 'Chair', color: '#aa3377' } })
  } finally {
    a.destroy()
    b.destroy()
  }
})

test('toBytes accepts what socket.io hands over and refuses text', () => {
  const buffer = new Uint8Array([9, 0, 0, 2, 7, 9]).buffer
  assert.deepEqual([...toBytes(buffer)], [9, 0, 0, 2, 7, 9])
  // A Node Buffer / a view with an offset must not leak the bytes around it.
  assert.deepEqual([...toBytes(new Uint8Array(buffer, 3, 2))], [2, 7])
  assert.deepEqual([...toBytes(new DataView(buffer, 1, 2))], [0, 0])
  assert.deepEqual([...toBytes(Buffer.from([1, 2]))], [1, 2])
  assert.throws(() => toBytes('0,0,1,0'), TypeError)
})

test('a truncated frame raises instead of decoding garbage', () => {
  const frame = encodeSyncStep1(new Y.Doc())
  assert.throws(() => decodeFrame(frame.slice(0, 2)))
  assert.equal(frameKind(new Uint8Array([7])), 'unknown')
})
