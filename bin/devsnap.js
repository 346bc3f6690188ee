#!/usr/bin/env node
// Entry point of the `devsnap` CLI: the webpack bundle when built, else tsc's output.
const fs = require('fs');
const path = require('path');
const bundle = path.join(__dirname, '..', 'dist', 'devsnap.js');
const compiled = path.join(__dirname, '..', 'out', 'imaging', 'cli.js');
const entry = fs.existsSync(bundle) ? bundle : compiled;
if (!fs.existsSync(entry)) {
  console.error('devsnap: not built yet. Run `npm run build` in the devsnap folder first.');
  process.exit(2);
}
require(entry);
