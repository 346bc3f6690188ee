// The Engine of the current user: every operation through the engine service (engineClient.ts),
// one long-lived process per window instead of one CLI process per call.
import type { OpName, OpParams, OpResult } from '../imaging/protocol';
import { EngineClient } from './engineClient';
import { CallOptions, EngineFacade } from './engine';

export class ServedEngine extends EngineFacade {
  constructor(readonly client: EngineClient) {
    super();
  }

  call<K extends OpName>(op: K, params: OpParams<K>, options?: CallOptions): Promise<OpResult<K>> {
    return this.client.call(op, params, options);
  }
}
