// cp.async, cp.async.bulk and mbarrier (cuda/cpasync.cu, nvcc for sm_80 and sm_90) against host computations.

import { strict as assert } from 'node:assert';
import * as fs from 'fs';
import * as path from 'path';
import { Session, hasNvcc, nvccPtx } from './harness';

const SRC = path.join(__dirname, '../../../../test/gpu-runtime/emulator/cuda/cpasync.cu');

describe('emulator: cp.async and mbarrier', function () {
  before(function () { if (!hasNvcc()) this.skip(); });

  for (const arch of ['sm_80', 'sm_90']) {
    it(`copies at issue, zero-fills, and waits on mbarrier phases (${arch})`, async function () {
      this.timeout(300000);
      const ptx = nvccPtx(fs.readFileSync(SRC, 'utf8'), [`-arch=${arch}`]);
      assert.match(ptx, /cp\.async\.cg\.shared\.global/);
      assert.match(ptx, /mbarrier\.(test|try)_wait/);
      const s = new Session();
      const m = s.load(ptx);

      const blocks = 3;
      const g = new Float32Array(blocks * 256 * 4).map((_, i) => (i * 37) % 101 - 50);
      const gB = s.upload(g);
      const out = s.alloc(blocks * 256 * 4);
      const keep = 8; // bytes kept of each 16-byte second-stage source; the rest zero-filled
      s.launch(m, 'pipe', blocks, 128, [gB, out, keep]);
      const got = await s.download(out, new Float32Array(blocks * 128));
      for (let b = 0; b < blocks; b++) {
        for (let i = 0; i < 128; i++) {
          const v = (b * 256 + (i + 1) % 128) * 4, w = (b * 256 + 128 + (i + 5) % 128) * 4;
          const want = g[v] + 2 * g[v + 1] + 3 * g[v + 2] + 4 * g[v + 3] + 10 * (g[w] + g[w + 1]);
          assert.equal(got[b * 128 + i], Math.fround(want), `pipe block ${b} thread ${i}`);
        }
      }

      s.launch(m, 'group', blocks, 256, [gB, out]);
      const got2 = await s.download(out, new Float32Array(blocks * 256));
      for (let i = 0; i < blocks * 256; i++) assert.equal(got2[i], g[(i & ~255) + 255 - (i & 255)]);

      const gi = new Int32Array(128).map((_, i) => i * 7 - 100);
      const giB = s.upload(gi);
      s.launch(m, 'barrier', 1, 64, [giB, out]);
      const got3 = await s.download(out, new Int32Array(128));
      for (let r = 0; r < 2; r++) for (let i = 0; i < 64; i++) assert.equal(got3[r * 64 + i], gi[r * 64 + 63 - i] * (r + 1));
      const gq = new Int32Array(2 * 64 * 4).map((_, i) => (i * 13) % 97 - 40);
      const gqB = s.upload(gq);
      s.launch(m, 'bulk', 2, 64, [gqB, out]);
      const got4 = await s.download(out, new Int32Array(128));
      for (let b = 0; b < 2; b++) for (let i = 0; i < 64; i++) {
        const v = (b * 64 + 63 - i) * 4;
        assert.equal(got4[b * 64 + i], gq[v] + 2 * gq[v + 1] + 3 * gq[v + 2] + 4 * gq[v + 3], `bulk block ${b} thread ${i}`);
      }
      if (arch === 'sm_90') assert.match(ptx, /cp\.async\.bulk\.shared::cluster\.global/);
      assert.equal(s.ctx.stickyError, 0);
    });
  }
});
