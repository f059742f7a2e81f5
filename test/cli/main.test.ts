import * as assert from 'node:assert/strict';
import { main } from '../../gpu-runtime/cli/src/main';
import { runCli } from './runCli';

async function captureStdout<T>(f: () => Promise<T>): Promise<{ code: T; out: string }> {
  let out = '';
  const orig = process.stdout.write;
  process.stdout.write = ((s: string | Uint8Array) => {
    out += String(s);
    return true;
  }) as typeof process.stdout.write;
  try {
    return { code: await f(), out };
  } finally {
    process.stdout.write = orig;
  }
}

describe('rgpu command line', () => {
  it('lists the commands on --help and exits 2 without a command', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0);
    for (const c of ['serve', 'proxy', 'run', 'smi', 'kernel', 'demo']) assert.match(help.stdout, new RegExp(`^  ${c} `, 'm'));
    const none = await runCli([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /usage: rgpu/);
  });

  it('rejects an unknown command and bad options with status 2 and the usage', async () => {
    const r = await runCli(['frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
    const p = await runCli(['proxy', '--bogus']);
    assert.equal(p.code, 2);
    assert.match(p.stderr, /usage: rgpu proxy/);
    const i = await runCli(['proxy', '--stats-interval', 'often']);
    assert.equal(i.code, 2);
    assert.match(i.stderr, /--stats-interval/);
  });

  it('prints help for each of its own subcommands', async () => {
    // In-process: spawning node for each costs seconds on a loaded machine.
    for (const [cmd, re] of [['proxy', /usage: rgpu proxy/], ['run', /usage: rgpu run/], ['smi', /usage: rgpu smi/]] as const) {
      const { code, out } = await captureStdout(() => main([cmd, '--help']));
      assert.equal(code, 0, cmd);
      assert.match(out, re);
    }
  });

  it('rejects a malformed pool URL with a clear message', async () => {
    const r = await runCli(['smi', '--pool', 'http://example.com']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad pool URL "http:\/\/example.com"/);
  });
});
