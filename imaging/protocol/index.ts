// The typed messages shared by the engine's CLI and services, the extension, the elevated helper and
// the webview: everything that crosses a process or frame boundary is one of these shapes. Each is
// a valibot schema (the runtime check) and the TypeScript type inferred from it, under one name.
// Import nothing but valibot here: this folder is bundled into the webview too.
export * from './common';
export * from './limits';
export * from './disks';
export * from './snapshots';
export * from './requests';
export * from './results';
export * from './files';
export * from './undo';
export * from './usage';
export * from './automation';
export * from './recovery';
export * from './ops';
export * from './helper';
export * from './rpc';
export * from './format';
