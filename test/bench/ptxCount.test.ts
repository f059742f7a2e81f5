import * as assert from 'node:assert/strict';
import { countThreadInstructions, PtxCountError } from '../../bench/src/ptxCount';

// A hand-written kernel in nvcc's shape: a guarded counted loop, then a tid-guarded tail.
const PTX = `
.visible .entry k(
	.param .u32 k_param_0
)
{
	.reg .pred 	%p<4>;
	.reg .b32 	%r<8>;
	ld.param.u32 	%r1, [k_param_0];
	mov.u32 	%r2, %tid.x;
	setp.lt.s32 	%p1, %r1, 1;
	@%p1 bra 	$L__BB0_3;
	mov.u32 	%r3, 0;
$L__BB0_2:
	.pragma "nounroll";
	add.s32 	%r3, %r3, 1;
	setp.lt.s32 	%p2, %r3, %r1;
	@%p2 bra 	$L__BB0_2;
$L__BB0_3:
	setp.gt.s32 	%p3, %r2, 3;   // threads 0..3 fall through
	@%p3 bra 	$L__BB0_5;
	add.s32 	%r4, %r2, 1;
	add.s32 	%r5, %r4, 1;
$L__BB0_5:
	ret;
}
`;

describe('bench ptxCount', () => {
  it('multiplies loop bodies by their trips and tid-guarded blocks by the threads that enter them', () => {
    const c = countThreadInstructions(PTX, 'k', { block: [32, 1, 1], loopTrips: [10] });
    // 5 straight-line instructions before the loop, 3 in the body x 10, setp + bra + ret for all 32,
    // and 2 instructions for 4 threads.
    const perThread = 5 + 3 * 10 + 3;
    assert.equal(c.perBlock, perThread * 32 + 2 * 4);
    assert.equal(c.staticInstructions, 13);
    assert.equal(c.assumedFallThrough, 1);
  });

  it('refuses a trip list that does not match the loops', () => {
    assert.throws(() => countThreadInstructions(PTX, 'k', { block: [32, 1, 1], loopTrips: [] }), PtxCountError);
    assert.throws(() => countThreadInstructions(PTX, 'missing', { block: [1, 1, 1], loopTrips: [1] }), /not found/);
  });
});
