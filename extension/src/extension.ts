// package.json "main". Loads the extension from tsc's output when it is there (a checkout with node_modules),
// else from the esbuild bundle the .vsix ships (`vsce package --no-dependencies` carries no node_modules).
// A separate bundle path, rather than writing the bundle over this file, keeps a concurrent `tsc` from
// replacing the bundle while vsce zips it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as Activate from './activate';

const dev = path.join(__dirname, 'activate.js');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const impl: typeof Activate = require(fs.existsSync(dev) ? dev : path.join(__dirname, '..', 'bundle', 'activate.js'));

export const activate = impl.activate;
export const deactivate = impl.deactivate;
