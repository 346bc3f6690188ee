// The panel's static markup: the toolbar with the snapshot pickers, the summary, the tab strip and
// one tabpanel per tab. Written once at start-up; the tab modules fill their parts.
import { icon } from './icons';
import { KIND_LABEL, KINDS } from './store';
import { CHANGE_LETTER } from './tree';

export function mountLayout(): void {
  // The template's lines are not indented: the markup (whitespace included) is as it always was.
  document.body.innerHTML = `
<div id="app">
  <header class="toolbar" role="toolbar" aria-label="Snapshots to compare">
    <label class="picker"><span class="picker-label">Before</span><select id="pick-a" aria-label="Before: the older snapshot"></select><span id="consistency-a" class="dim"></span></label>
    <button id="swap" class="icon-button" title="Swap before and after" aria-label="Swap before and after">${icon('arrow-right')}</button>
    <label class="picker"><span class="picker-label">After</span><select id="pick-b" aria-label="After: the newer snapshot"></select><span id="consistency-b" class="dim"></span></label>
    <button id="refresh" class="icon-button" title="Compare again" aria-label="Compare again">${icon('refresh')}</button>
    <span id="status" class="status" role="status" aria-live="polite"></span>
  </header>
  <section id="summary" class="summary" aria-label="Upgrade summary"></section>
  <div class="tabs" role="tablist" aria-label="Details">
    <button role="tab" id="tab-files" data-section="files" aria-controls="panel-files">${icon('diff')}<span>Files</span><span class="count" id="count-files"></span></button>
    <button role="tab" id="tab-packages" data-section="packages" aria-controls="panel-packages">${icon('package')}<span>Packages</span><span class="count" id="count-packages"></span></button>
    <button role="tab" id="tab-partitions" data-section="partitions" aria-controls="panel-partitions">${icon('layers')}<span>Partitions</span><span class="count" id="count-partitions"></span></button>
    <button role="tab" id="tab-restore" data-section="restore" aria-controls="panel-restore">${icon('history')}<span>Restore</span></button>
  </div>
  <section id="panel-files" class="tabpanel files" role="tabpanel" aria-labelledby="tab-files">
    <div class="filterbar">
      <div class="search">${icon('filter')}<input id="file-filter" type="text" placeholder="Filter changed files (e.g. etc conf)" aria-label="Filter changed files" spellcheck="false"></div>
      <div class="kinds" role="group" aria-label="Kinds of change">
        ${KINDS.map((k) => `<button class="kind kind-${k}" data-kind="${k}" aria-pressed="true" title="${KIND_LABEL[k]}">${CHANGE_LETTER[k]} <span class="kind-n" id="kind-n-${k}"></span></button>`).join('')}
      </div>
      <span id="file-totals" class="totals"></span>
    </div>
    <div class="tree-head" aria-hidden="true"><span class="col-name">Path</span><span class="col-change">Change</span><span class="col-size">Size before → after</span></div>
    <div id="tree" class="tree" role="tree" tabindex="0" aria-label="Changed files" aria-multiselectable="true">
      <div id="tree-spacer" class="tree-spacer"><div id="tree-rows" class="tree-rows"></div></div>
      <div id="tree-empty" class="empty"></div>
    </div>
    <div class="restorebar" role="group" aria-label="Restore selected files">
      <span id="selection-text" class="selection-text"></span>
      <label>from <select id="restore-from" aria-label="Restore from which snapshot"><option value="a">Before</option><option value="b">After</option></select></label>
      <button id="restore-original" class="secondary" title="Put the selected files back where they were (the snapshot's partition where it is mounted)">${icon('history')}<span>To original place…</span></button>
      <button id="restore-folder" class="secondary" title="Restore the selected files into a folder you choose">${icon('folder')}<span>To folder…</span></button>
      <button id="clear-selection" class="link" title="Clear the selection">Clear</button>
    </div>
    <div id="plan" class="plan" hidden></div>
  </section>
  <section id="panel-packages" class="tabpanel packages" role="tabpanel" aria-labelledby="tab-packages" hidden>
    <div class="filterbar"><div class="search">${icon('filter')}<input id="package-filter" type="text" placeholder="Filter packages (name, version, kind:added, manager:dpkg)" aria-label="Filter packages" spellcheck="false"></div><span id="package-totals" class="totals"></span></div>
    <div class="table-wrap"><table class="grid" aria-label="Package changes"><thead><tr><th>Change</th><th>Package</th><th>Manager</th><th>Before</th><th>After</th></tr></thead><tbody id="package-rows"></tbody></table></div>
  </section>
  <section id="panel-partitions" class="tabpanel partitions" role="tabpanel" aria-labelledby="tab-partitions" hidden>
    <div class="table-wrap"><table class="grid" aria-label="Changed bytes per partition"><thead><tr><th>Partition</th><th>Filesystem</th><th>Size</th><th>Changed</th><th class="bar-col"></th></tr></thead><tbody id="partition-rows"></tbody></table></div>
  </section>
  <section id="panel-restore" class="tabpanel restore" role="tabpanel" aria-labelledby="tab-restore" hidden></section>
</div>`;
}
