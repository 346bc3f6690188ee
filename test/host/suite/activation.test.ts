// The extension loads in a real extension host, returns its API and registers its commands.
import * as assert from 'assert';
import * as fs from 'fs';
import * as path from 'path';
import * as vscode from 'vscode';
import { describe, hostContext, it } from './context';
import { api, EXTENSION_ID } from './util';

describe('activation', () => {
  it('the extension is present and activates', async () => {
    const ext = vscode.extensions.getExtension(EXTENSION_ID);
    assert.ok(ext, `${EXTENSION_ID} is not loaded`);
    await ext.activate();
    assert.strictEqual(ext.isActive, true);
  });

  it('activate() returns the API with the tree provider', async () => {
    const a = await api();
    assert.ok(a, 'activate() returned nothing');
    assert.strictEqual(typeof a.refresh, 'function');
    assert.ok(a.treeProvider, 'no treeProvider');
  });

  it('every contributed command is registered', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(hostContext().root, 'package.json'), 'utf8'));
    const contributed: string[] = (manifest.contributes?.commands || []).map((c: { command: string }) => c.command);
    assert.ok(contributed.length > 0, 'package.json contributes no commands');
    const registered = new Set(await vscode.commands.getCommands(true));
    const missing = contributed.filter((c) => !registered.has(c));
    assert.deepStrictEqual(missing, [], `contributed but not registered: ${missing.join(', ')}`);
  });
});
