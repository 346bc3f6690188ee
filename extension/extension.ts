// placeholder until the extension lands
export function activate(): void {}
export function deactivate(): void {}
