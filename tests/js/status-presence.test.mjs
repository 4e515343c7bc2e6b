import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeStatus } from '../../static/src/collab/status.js'
import { FALLBACK_COLOR, participants, safeColor, safeRemoteState } from '../../static/src/collab/presence.js'

test('the status line reads Saved / Saving… / Offline — N changes pending / Read-only', () => {
  assert.deepEqual(describeStatus({ status: 'synced', pending: 0 }), { text: 'Saved', state: 'saved' })
  assert.deepEqual(describeStatus({ status: 'synced', pending: 2 }), { text: 'Saving…', state: 'saving' })
  assert.deepEqual(describeStatus({ status: 'offline', pending: 3 }), { text: 'Offline — 3 changes pending', state: 'offline' })
  assert.deepEqual(describeStatus({ status: 'offline', pending: 1 }), { text: 'Offline — 1 change pending', state: 'offline' })
  assert.deepEqual(describeStatus({ status: 'offline', pending: 0 }), { text: 'Offline', state: 'offline' })
  assert.deepEqual(describeStatus({ status: 'connecting', pending: 0 }), { text: 'Connecting…', state: 'connecting' })
  assert.deepEqual(describeStatus({ status: 'readonly', pending: 0 }), { text: 'Read-only', state: 'readonly' })
  assert.deepEqual(describeStatus({ status: 'offline', pending: 0, error: 'forbidden' }), { text: 'Cannot edit this clause: forbidden', state: 'error' })
})

test('only #rrggbb colours from other clients reach a style', () => {
  assert.equal(safeColor('#1a2B3c'), '#1a2B3c')
  for (const bad of ['#abc', 'red; background:url(https://evil.example/x)', 'url(x)', '#12345', '#1234567', '', null, 42,
    'expression(alert(1))', '#123456; position:fixed']) {
    assert.equal(safeColor(bad), FALLBACK_COLOR, String(bad))
  }
})

test('participants: yourself first, then by name; states without a user are skipped', () => {
  const states = new Map([
    [7, { user: { name: 'Zoë (civil society)', color: '#00aa00' } }],
    [3, { user: { name: '  ana  ', color: 'javascript:1' } }],
    [9, { cursor: null }],
    [5, { user: { name: '', color: '#123456' } }],
    [4, { user: { name: 'x'.repeat(200), color: '#fff' } }]
  ])
  const list = participants(states, 7)
  assert.deepEqual(list.map((p) => [p.clientId, p.isSelf]), [[7, true], [3, false], [5, false], [4, false]])
  assert.equal(list[1].name, 'ana')
  assert.equal(list[1].color, FALLBACK_COLOR)
  assert.equal(list[2].name, 'Anonymous')
  assert.equal(list[3].name.length, 80)
})

test('a remote awareness state keeps only a checked user and a well-shaped cursor (SECURITY-CASES 34)', () => {
  const hostile = {
    user: { name: '  Mallory  ', color: 'red;position:fixed;inset:0', colorLight: 'url(x)' },
    cursor: { anchor: { assoc: 0 }, head: { assoc: 0 } },
    extra: { big: 'x'.repeat(1000) }
  }
  assert.deepEqual(safeRemoteState(hostile), {
    user: { name: 'Mallory', color: FALLBACK_COLOR, colorLight: `${FALLBACK_COLOR}33` },
    cursor: { anchor: { assoc: 0 }, head: { assoc: 0 } }
  })
  assert.deepEqual(safeRemoteState({ user: { name: 'Ana', color: '#0b57d0' }, cursor: 'nonsense' }),
    { user: { name: 'Ana', color: '#0b57d0', colorLight: '#0b57d033' } })
  assert.equal(safeRemoteState(null), null)
  assert.equal(safeRemoteState('text'), null)
})
