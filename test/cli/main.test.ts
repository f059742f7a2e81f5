import * as assert from 'node:assert/strict';
import { runCli } from './runCli';

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
    for (const [cmd, re] of [['proxy', /usage: rgpu proxy/], ['run', /usage: rgpu run/], ['smi', /usage: rgpu smi/]] as const) {
      const r = await runCli([cmd, '--help']);
      assert.equal(r.code, 0, cmd);
      assert.match(r.stdout, re);
    }
  });

  it('rejects a malformed pool URL with a clear message', async () => {
    const r = await runCli(['smi', '--pool', 'http://example.com']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad pool URL "http:\/\/example.com"/);
  });
});
