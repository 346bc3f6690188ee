// The layers of imaging/ (README, Development): each imports only from the layers before it, and the
// engine never imports the extension, the webview or vscode; the webview imports only imaging/protocol.
// `npm run check:layers` (part of `npm test`).
'use strict';

const LAYERS = [
  ['protocol', '^imaging/protocol/'],
  ['core', '^imaging/(core/|runtime\\.ts$)'],
  ['codec', '^imaging/codec/'],
  // Where a repository's objects live: a folder or an S3-compatible bucket (storage/storage.ts).
  ['storage', '^imaging/storage/'],
  ['filesystems', '^imaging/filesystems/'],
  ['disk', '^imaging/disk/'],
  ['repo', '^imaging/repo/'],
  ['consistency', '^imaging/consistency/'],
  ['capture', '^imaging/capture/'],
  ['inventory', '^imaging/inventory/'],
  ['files', '^imaging/files/'],
  ['archive', '^imaging/archive/'],
  ['snapshot', '^imaging/snapshot/'],
  // Automatic snapshots (config, timer, hooks): below ops/ so that an operation can install them; it runs
  // the engine's operations through the runOp its caller passes (automation/run.ts).
  ['automation', '^imaging/automation/'],
  // The recovery kit (devsnap with its own Node, for a live USB): written by the CLI and by an operation.
  ['recovery', '^imaging/recovery/'],
  ['ops', '^imaging/ops/'],
  ['helper', '^imaging/helper/'],
  ['cli', '^imaging/(cli/|cli[^/]*\\.ts$)'],
];

const upward = LAYERS.slice(0, -1).map(([name, from], i) => ({
  name: `layer-${name}`,
  comment: `imaging/ layers: ${name} imports only from the layers below it (${
    LAYERS.slice(0, i)
      .map(([n]) => n)
      .join(', ') || 'none'
  })`,
  severity: 'error',
  from: { path: from },
  to: {
    path: LAYERS.slice(i + 1)
      .map(([, p]) => `(${p})`)
      .join('|'),
  },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'engine-alone',
      comment: 'the engine runs without VS Code: it imports neither vscode nor the extension or the webview',
      severity: 'error',
      from: { path: '^imaging/' },
      to: { path: '^(extension|webview-ui)/|^vscode$|^node_modules/@types/vscode/' },
    },
    {
      name: 'webview-protocol-only',
      comment:
        'the webview (a browser frame) imports from outside webview-ui/ only imaging/protocol/ (schemas, types, pure display helpers) and valibot: ' +
        'the rest of the engine, the extension and node modules have no place in its bundle (webview-ui/tsconfig.json has no node types either)',
      severity: 'error',
      from: { path: '^webview-ui/' },
      to: { pathNot: '^(webview-ui/|imaging/protocol/|node_modules/valibot/)' },
    },
    {
      name: 'no-circular',
      comment: 'no import cycles between modules',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    exclude: { path: '^(out|dist)/' },
  },
};
