// f16/bf16 beyond add/mul: fma(.relu), min/max(.NaN), abs, .sat, set/setp on f16x2, directed-rounding
// conversions from f32, bf16 <-> int. cuda/half.cu's compute() runs in the emulator (sm_90 PTX) and on the
// host (the same function in an nvcc-built executable), compared bit for bit.

import { strict as assert } from 'node:assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Session, hasNvcc, nvccBuild, nvccPtx } from './harness';

const SRC = path.join(__dirname, '../../../../test/gpu-runtime/emulator/cuda/half.cu');
const N = 256, K = 48;

function inputs(): Float32Array {
  const f = new Float32Array(N);
  let s = 0x1234567;
  const rnd = (): number => { s ^= s << 13; s ^= s >>> 17; s ^= s << 5; return (s >>> 0) / 4294967296; };
  const special = [0, -0, 1, -1, 65504, 70000, -70000, 2 ** -24, 2 ** -25, -(2 ** -20), 1 + 2 ** -11, 1 + 3 * 2 ** -11, NaN, Infinity, 3e38, 1e-40];
  for (let i = 0; i < N; i++) {
    if (i < special.length) f[i] = special[i];
    else f[i] = (rnd() < 0.5 ? -1 : 1) * (1 + rnd()) * 2 ** Math.floor(rnd() * 40 - 24);
  }
  return f;
}

describe('emulator: f16/bf16 operations against the host', function () {
  before(function () { if (!hasNvcc()) this.skip(); });

  it('matches the host build of the same code bit for bit (sm_90 PTX)', async function () {
    this.timeout(300000);
    const src = fs.readFileSync(SRC, 'utf8');
    const ptx = nvccPtx(src, ['-arch=sm_90', '-DNO_MAIN']);
    const bin = nvccBuild(src, ['-arch=sm_90'], 'exe');
    const binPath = path.join(os.tmpdir(), 'rgpu-emu-ptx', `half-host-${process.pid}`);
    fs.writeFileSync(binPath, bin, { mode: 0o755 });
    const inp = inputs();
    let want: Uint16Array;
    try {
      const out = execFileSync(binPath, { input: Buffer.from(inp.buffer) });
      want = new Uint16Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
    } finally { fs.rmSync(binPath, { force: true }); }

    const s = new Session();
    const m = s.load(ptx);
    const inBuf = s.upload(inp), out = s.alloc(N * K * 2);
    s.launch(m, 'kern', N / 64, 64, [inBuf, out]);
    const got = await s.download(out, new Uint16Array(N * K));
    assert.equal(s.ctx.stickyError, 0);
    const bad: string[] = [];
    for (let i = 0; i < N * K; i++) {
      if (got[i] === want[i]) continue;
      bad.push(`input ${Math.floor(i / K)} (${inp[Math.floor(i / K)]}), result ${i % K}: got ${got[i].toString(16)}, want ${want[i].toString(16)}`);
    }
    assert.deepEqual(bad.slice(0, 20), [], `${bad.length} mismatches`);
  });
});
