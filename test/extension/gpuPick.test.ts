import * as assert from 'node:assert/strict';
import { gpuPickItems, switchNeedsRestart } from '../../extension/src/commands/gpuPick';
import { normalizePoolAddress } from '../../extension/src/commands/poolAddress';
import { BadPoolAddressError } from '../../extension/src/common/errors';
import { parseInventory } from '../../extension/src/proxy/protocol';

const inv = parseInventory({ types: [
  { type: 'A100-40GB', name: 'NVIDIA A100', memory: 40 * 2 ** 30, total: 1, free: 0, sessions: 1, queued: 2 },
  { type: 'T4', name: 'Tesla T4', memory: 15 * 2 ** 30, total: 2, free: 1, sessions: 1, queued: 0 },
  { type: 'H100', name: 'NVIDIA H100', memory: 80 * 2 ** 30, total: 1, free: 0, sessions: 1, queued: 0 },
  { name: 'no type: dropped' },
] });

describe('extension GPU quick pick', () => {
  it('lists type, memory, free/total and queue, free types first', () => {
    const items = gpuPickItems(inv, 'T4');
    assert.deepEqual(items.map((i) => i.type), ['T4', 'H100', 'A100-40GB']);
    assert.equal(items[0].label, '$(check) T4');
    assert.equal(items[0].picked, true);
    assert.equal(items[0].description, 'Tesla T4 · 15 GiB');
    assert.equal(items[0].detail, '1/2 free');
    assert.equal(items[1].detail, '0/1 free · all in use: new sessions wait');
    assert.equal(items[2].detail, '0/1 free · 2 queued');
    assert.equal(items[2].label, 'A100-40GB');
  });

  it('asks before restarting only when kernels run and the type changes', () => {
    assert.equal(switchNeedsRestart('T4', 'A100-40GB', 1), true);
    assert.equal(switchNeedsRestart('T4', 'A100-40GB', 0), false);
    assert.equal(switchNeedsRestart('T4', 'T4', 3), false);
  });

  it('rejects an inventory without types', () => {
    assert.throws(() => parseInventory({}), /expected \{types/);
  });

  it('normalises pool addresses', () => {
    assert.equal(normalizePoolAddress(' gpu.example.com:7447 '), 'tls://gpu.example.com:7447');
    assert.equal(normalizePoolAddress('127.0.0.1:7447'), 'tcp://127.0.0.1:7447');
    assert.equal(normalizePoolAddress('tcp://[::1]:9'), 'tcp://[::1]:9');
    assert.throws(() => normalizePoolAddress('http://x:1'), BadPoolAddressError);
    assert.throws(() => normalizePoolAddress('x:70000'), (e: BadPoolAddressError) => e.code === 'RGPU_ERR_BAD_POOL_ADDRESS');
  });
});
