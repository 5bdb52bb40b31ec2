// passt: unprivileged user-mode networking for VMs (passt) and network
// namespaces (pasta). The public API; everything else is internal.
export { startPasst, startPasta } from './api.js';
export type { PasstOptions, PastaOptions, Instance, PastaInstance, CommonOptions, PortForwardOption } from './api.js';
export type { EngineStats, EngineEvent } from './native.js';
export { Engine } from './engine.js';
