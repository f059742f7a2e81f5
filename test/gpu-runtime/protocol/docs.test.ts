import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPS } from '../../../gpu-runtime/protocol/generated/ops';

const root = join(__dirname, '../../../..');

describe('docs/protocol.md', () => {
  it('lists every op of ops.yaml, as docgen.mjs generates it (docgen --check)', () => {
    execFileSync(process.execPath, [join(root, 'gpu-runtime/protocol/docgen.mjs'), '--check'], { stdio: 'pipe' });
    const doc = readFileSync(join(root, 'docs/protocol.md'), 'utf8');
    for (const d of OPS.values()) assert.ok(doc.includes(`| ${d.id} | \`${d.name}\` |`), d.name);
  });
});
