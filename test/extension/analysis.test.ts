import * as assert from 'node:assert/strict';
import { analyze, codeOf, hoverMarkdown } from '../../extension/src/lsp/analysis';

const kinds = (src: string) => analyze(src).map((f) => `${f.line}:${f.kind}:${f.what}`);

describe('extension hints analysis', () => {
  it('flags sync points inside loops only', () => {
    const src = [
      'loss = model(x).sum().item()',        // 0: outside a loop: fine
      'for step in range(1000):',            // 1
      '    out = model(x)',                  // 2
      '    total += out.sum().item()',       // 3
      '    torch.cuda.synchronize()',        // 4
      'print(total.cpu())',                  // 5: after the loop
    ].join('\n');
    assert.deepEqual(kinds(src), ['3:sync:.item()', '4:sync:torch.cuda.synchronize(']);
    const f = analyze(src)[0];
    assert.equal(f.iterations, 1000);
    assert.equal(f.loopLine, 1);
    assert.equal(f.start, '    total += out.sum()'.length);
  });

  it('multiplies literal ranges of nested loops and gives up on unknown ones', () => {
    const src = 'for e in range(10):\n  for b in range(0, 100, 2):\n    v = t.numpy()\nwhile True:\n  y = z.tolist()';
    const f = analyze(src);
    assert.equal(f.length, 2);
    assert.equal(f[0].iterations, 500);
    assert.equal(f[1].iterations, undefined);
  });

  it('ignores comments, strings and magics', () => {
    const src = 'for i in range(3):\n    # x.item()\n    s = "a.cpu()"\n    %time y = x.item()\n    q = 1';
    assert.deepEqual(kinds(src), []);
    assert.equal(codeOf('a = "x.item()" # .cpu()'), 'a = "        " ');
  });

  it('flags copies per iteration and many small copies in one loop', () => {
    const src = 'for batch in loader:\n    a = x.cuda()\n    b = y.to("cuda:0")\n    c = torch.tensor(v, device="cuda")\n    cudaMemcpy(d, h, n, 1)';
    const f = analyze(src);
    assert.deepEqual(f.map((x) => x.kind), ['manyCopies', 'copy', 'copy', 'copy', 'copy']);
    assert.equal(f[0].copies, 4);
    assert.equal(f[0].line, 0);
    assert.deepEqual(kinds('for b in L:\n    a = x.cuda()'), ['1:copy:.cuda()']);
  });

  it('CUDA C-style synchronisation in a while loop', () => {
    assert.deepEqual(kinds('while not done:\n    launch()\n    cudaDeviceSynchronize()'), ['2:sync:cudaDeviceSynchronize(']);
  });

  it('hover states the cost at the live round-trip time', () => {
    const [f] = analyze('for i in range(10000):\n    s += x.item()');
    const md = hoverMarkdown(f, { gpuType: 'T4', rttP50Ms: 0.42, rttP99Ms: 1.5 });
    assert.match(md, /on T4: round trip p50 \*\*0\.42 ms\*\*, p99 1\.5 ms/);
    assert.match(md, /runs 10,000 times: at least \*\*4\.20 s\*\*/);
    assert.match(hoverMarkdown(f, undefined), /No live round-trip time/);
    const [g] = analyze('while 1:\n    s += x.item()');
    assert.match(hoverMarkdown(g, { rttP50Ms: 2 }), /Every 1,000 iterations cost at least \*\*2\.00 s\*\*/);
  });
});
