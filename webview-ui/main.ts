// The compare & restore panel (runs inside the webview; bundled by webpack as dist/webview.js).
//
// Plain DOM + VS Code's CSS variables rather than @vscode-elements/elements: the panel needs one
// virtualized tree (100k rows), a table, tabs and a few buttons. The components library (Lit web
// components, ~150 KB minified for the parts we would use) adds no virtualized tree that scales
// that far, and theming through --vscode-* variables is what it does internally anyway; so the
// bundle stays small (measure: `ls -l dist/webview.js`) and every element is ours to make
// keyboard-navigable. Icons are codicons as inline SVG (webview-ui/icons.ts).
//
// State survives hide/show through getState/setState (the panel does not use
// retainContextWhenHidden): on load the webview restores its state and says 'ready'; the extension
// answers 'init' and re-sends a comparison it has cached.
//
// Modules: store.ts (state), layout.ts (markup), render.ts (shared helpers), header.ts (pickers and
// summary), tabs.ts, files-tab.ts + files-restore.ts, packages-tab.ts, partitions-tab.ts,
// restore-tab.ts, compare.ts (starting a comparison, renderAll), host.ts (messages from the extension).
// Only imaging/protocol (and valibot) from outside this folder: webview-ui/tsconfig.json, check:layers.
import { renderAll, initPickers } from './compare';
import { initFileRestore } from './files-restore';
import { initFilesTab } from './files-tab';
import { initHostMessages } from './host';
import { mountLayout } from './layout';
import { initPackagesTab } from './packages-tab';
import { $ } from './render';
import { initRestoreTab } from './restore-tab';
import { post, state } from './store';
import { initTabs } from './tabs';

mountLayout();
initPickers();
initTabs();
initFilesTab();
initFileRestore();
initPackagesTab();
initRestoreTab();
initHostMessages();

// Restore the saved view, then ask for data.
$<HTMLInputElement>('#file-filter').value = state.fileFilter;
$<HTMLInputElement>('#package-filter').value = state.packageFilter;
$<HTMLSelectElement>('#restore-from').value = state.restoreFrom;
renderAll();
post({ type: 'ready' });
