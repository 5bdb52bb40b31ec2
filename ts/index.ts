// passt: unprivileged user-mode networking for VMs (passt) and network
// namespaces (pasta). The public API; everything else is internal.
export { startPasst, startPasta } from './api.js';
export type {
  PasstOptions,
  PastaOptions,
  Handle,
  Instance,
  PastaInstance,
  InstanceEvents,
  ForwardControl,
  NsForwardControl,
  NsForwardOption,
  CommonOptions,
  PortForwardOption,
} from './api.js';
export type { EngineStats, EngineEvent, FlowInfo, FlowRecord, Verdict, Endpoint, Proto, Forward, NsForward } from './native.js';
export { loadPolicy } from './policy.js';
export type { Policy, PolicyAnswer, OpenedFlow } from './policy.js';
export { Engine } from './engine.js';
