/**
 * The training side of the public face (models/index.ts), loaded on demand through loadTrainer(): importing it loads
 * TensorFlow.js (~1.4 s), which the coordinator, the spec tools and the reports never need.
 */
export { train, buildTrainBatch, type TrainOptions } from './train.js';
export { evaluateCheckpoint } from './evaluate-checkpoint.js';
export { selectBackend, type BackendInfo } from './backend.js';
export { buildModel, createEngine } from './engine/select.js';
export { trainStep } from './engine/engine.js';
export { keepCount } from './vit.js';
export { countGpuCalls, type GpuCallCounts } from './engine/webgpu/call-counter.js';
