/**
 * The plan of one training step for one set of shapes (model, batch, kept image tokens, text tokens): every buffer,
 * bind group and uniform block made when the plan is built, and the step as a fixed list of dispatches (forward,
 * backward, then AdamW) replayed into one compute pass each step. Per step the host only uploads the batch
 * (queue.writeBuffer into the plan's input buffers) and AdamW's learning rate and bias corrections.
 *
 * The data flow is models/engine/native.ts's, tower by tower: the image tower's patch GEMM with the kept patches'
 * positions gathered on the GPU, the text tower's token + position rows, pre-LN blocks (LN, q/k/v as one batched
 * GEMM, attention, output projection with the residual in its epilogue, LN, MLP with QuickGELU in the epilogue and
 * again on the second GEMM's load), final LayerNorms, mean / first-token pooling, projections, L2 normalisation, the
 * contrastive loss; then the same in reverse, every parameter gradient written in place into the flat gradient buffer.
 */
import type * as tf from '@tensorflow/tfjs';
import { LN_EPS } from '../../nn/layernorm.js';
import type { BlockParams, LayerNormParams } from '../../nn/block.js';
import type { FlipModel, ModelBatch } from '../../flip-model.js';
import { sinCos2d } from '../../nn/positions.js';
import { PAD_BIAS } from '../../text-encoder.js';
import { createBuffer, grid, STORAGE_USAGE, USAGE } from './gpu.js';
import { adamwUniform, ADAMW_THREADS, type AdamWArgs } from './kernels/adamw.js';
import { attentionGroups, attentionUniform, type AttentionArgs } from './kernels/attention.js';
import { columnSumGrid, columnSumUniform, type ColumnSumArgs } from './kernels/column-sum.js';
import { contrastiveUniform } from './kernels/contrastive.js';
import { patchPositionsUniform, scatterRowsGroups, scatterRowsUniform, segments, segmentWords, tokenEmbeddingUniform } from './kernels/embedding.js';
import { GEMM_FLAGS as F, gemmGrid, gemmUniform, splitK, type GemmArgs } from './kernels/gemm.js';
import { layerNormBackwardUniform, layerNormParamGradChunks, layerNormParamGradGrid, layerNormParamGradUniform, layerNormUniform } from './kernels/layernorm.js';
import { sumPartialsGroups, sumPartialsUniform } from './kernels/partials.js';
import { l2NormUniform, poolUniform, type PoolMode } from './kernels/pooling.js';
import { decoderInputUniform, patchLossUniform } from './kernels/reconstruction.js';
import type { ParamLayout } from './layout.js';
import { pipeline, type KernelName } from './pipelines.js';
import { UNIFORM_SLOT } from './uniforms.js';

/** The engine's flat buffers, shared by every plan of one engine. */
export interface FlatBuffers {
  params: GPUBuffer;
  grads: GPUBuffer;
  m: GPUBuffer;
  v: GPUBuffer;
  /** [4]: loss, log logit scale after the update, reconstruction loss (0 without the decoder), unused. */
  out: GPUBuffer;
}

interface Dispatch {
  kernel: KernelName;
  bindGroup: GPUBindGroup;
  grid: [number, number, number];
}

interface Spec {
  kernel: KernelName;
  buffers: GPUBuffer[];
  uniform: ArrayBuffer;
  grid: [number, number, number];
}

/** A block's parameter offsets in the flat buffers. */
interface BlockOffsets {
  ln1: [number, number];
  wqkv: number;
  bqkv: number;
  wo: number;
  bo: number;
  ln2: [number, number];
  w1: number;
  b1: number;
  w2: number;
  b2: number;
}

/** A tower's shapes and parameter offsets. */
interface TowerShape {
  batch: number;
  tokens: number;
  rows: number;
  width: number;
  heads: number;
  hidden: number;
  blocks: BlockOffsets[];
  lnFinal: [number, number];
  proj: number;
  /** The shared embedding's width. */
  embed: number;
}

/** The MAE decoder's shapes, buffers and parameter offsets within a plan. */
interface DecoderState {
  shape: TowerShape;
  buffers: TowerBuffers;
  offsets: { embedW: number; embedB: number; mask: number; predW: number; predB: number };
  /** The encoder's tokens embedded to the decoder width, and their gradient with one more row (the mask token's). */
  z: GPUBuffer;
  dz: GPUBuffer;
  h: GPUBuffer;
  stats: GPUBuffer;
  pred: GPUBuffer;
  dPred: GPUBuffer;
}

/** A tower's activations (kept for the backward pass) and gradient buffers. */
interface TowerBuffers {
  hs: GPUBuffer[];
  layers: {
    a: GPUBuffer;
    stats1: GPUBuffer;
    qkv: GPUBuffer;
    o: GPUBuffer;
    lse: GPUBuffer;
    mid: GPUBuffer;
    c: GPUBuffer;
    stats2: GPUBuffer;
    u: GPUBuffer;
  }[];
  keyBias: GPUBuffer;
  gCur: GPUBuffer;
  gOther: GPUBuffer;
  dtmp: GPUBuffer;
  du: GPUBuffer;
  dO: GPUBuffer;
  dqkv: GPUBuffer;
  scratch: GPUBuffer;
  /** The pooled features after the final LN (image: pooled after LN; text: LN of the pooled row). */
  features: GPUBuffer;
  z: GPUBuffer;
  e: GPUBuffer;
  rn: GPUBuffer;
  de: GPUBuffer;
  dz: GPUBuffer;
  dFeatures: GPUBuffer;
}

/** The most floats of partial results one reduction may use (128 MiB, or what the device binds); it gets fewer chunks
 * beyond that. */
const PARTIAL_MAX_FLOATS = 32 * 1024 * 1024;

export class StepPlan {
  readonly key: string;
  /** Buffers this plan made, with their bytes (the engine reports them as the step's memory). */
  readonly bytes: number;
  private readonly owned: GPUBuffer[] = [];
  private readonly specs: Spec[] = [];
  private readonly dispatches: Dispatch[];
  private readonly adamw: Dispatch;
  private readonly adamwSlot: number;
  private readonly uniforms: GPUBuffer;
  private readonly clears: { buffer: GPUBuffer; offset: number; size: number }[] = [];
  private readonly dummy: GPUBuffer;
  // Per-step inputs.
  private readonly pixels: GPUBuffer;
  private readonly keep: GPUBuffer;
  private readonly ids: GPUBuffer;
  private readonly positions: GPUBuffer;
  private readonly keyBias: GPUBuffer;
  private readonly tokenSegments: GPUBuffer;
  private readonly positionSegments: GPUBuffer;
  private readonly segmentHost: Uint32Array;
  private readonly biasHost: Float32Array;
  private readonly img: TowerShape;
  private readonly txt: TowerShape;
  // AdamW's per-step uniform block.
  private readonly layoutSize: number;
  private readonly decayEnd: number;
  private readonly logScaleOff: number;
  /** AdamW leaves these elements alone: the MAE decoder's parameters on a step without removed patches. */
  private readonly skip: [number, number];
  /** Partial products and row-chunk sums (weight, bias and LayerNorm gradients), shared by every reduction in turn;
   * made once the largest is known (a placeholder until then). */
  private partials: GPUBuffer;
  private partialFloats = 1;
  /** The MAE decoder's per-step inputs, when it runs. */
  private readonly mae: { source: GPUBuffer; target: GPUBuffer; weight: GPUBuffer; segments: GPUBuffer; segmentHost: Uint32Array } | null = null;

  constructor(
    private readonly device: GPUDevice,
    model: FlipModel,
    layout: ParamLayout,
    private readonly flat: FlatBuffers,
    readonly batch: number,
    readonly imageTokens: number,
    readonly textTokens: number,
    /** Rows per chunk of the reductions over token rows (weight, bias and LayerNorm gradients). */
    private readonly splitRows: number,
  ) {
    this.key = StepPlan.keyOf(batch, imageTokens, textTokens);
    const B = batch;
    const vit = model.image;
    const enc = model.text;
    const embed = model.imageProj.shape[1] as number;
    this.img = towerShape(layout, vit.params.blocks, vit.params.lnFinal, model.imageProj, B, imageTokens, vit.cfg.width, vit.cfg.heads);
    this.txt = towerShape(layout, enc.params.blocks, enc.params.lnFinal, model.textProj, B, textTokens, enc.cfg.width, enc.cfg.heads);
    const img = this.img;
    const txt = this.txt;
    const buf = (floats: number, label: string, usage: number = STORAGE_USAGE) => {
      const b = createBuffer(device, floats * 4, label, usage);
      this.owned.push(b);
      return b;
    };
    this.dummy = buf(4, 'dummy');
    const placeholder = device.createBuffer({ size: 4, usage: STORAGE_USAGE, label: 'partials (placeholder)' });
    this.partials = placeholder;

    // Inputs.
    this.pixels = buf(img.rows * vit.patchValues, 'pixels');
    this.keep = buf(B * (imageTokens - 1), 'keep');
    const table = buf(vit.positionTable.length, 'position table');
    device.queue.writeBuffer(table, 0, vit.positionTable);
    this.ids = buf(txt.rows, 'ids');
    this.positions = buf(txt.rows, 'positions');
    this.keyBias = buf(txt.rows, 'key bias');
    this.biasHost = new Float32Array(txt.rows);
    this.tokenSegments = buf(segmentWords(txt.rows), 'token segments');
    this.positionSegments = buf(segmentWords(txt.rows), 'position segments');
    this.segmentHost = new Uint32Array(segmentWords(txt.rows));
    const P = flat.params;
    const G = flat.grads;

    const ib = this.towerBuffers(img, buf, 'image', buf(img.rows, 'image key bias'));
    const tb = this.towerBuffers(txt, buf, 'text', this.keyBias);
    const S = buf(B * B, 'similarities');
    const dS = buf(B * B, 'similarity gradient');
    const lseS = buf(2 * B, 'loss row/column lse');
    const txtPooled = buf(B * txt.width, 'text pooled');
    const imgF = buf(img.rows * img.width, 'image final LN');
    const imgStatsF = buf(2 * img.rows, 'image final LN stats');
    const txtStatsF = buf(2 * B, 'text final LN stats');

    // Forward: image tower input.
    const pv = vit.patchValues;
    this.gemm({ M: img.rows, N: img.width, K: pv, bOff: layout.of(vit.params.patchW), biasOff: layout.of(vit.params.patchB), flags: F.bias }, this.pixels, P, ib.hs[0], P);
    this.add('patchPositions', [ib.hs[0], P, table, this.keep], patchPositionsUniform({ rows: img.rows, width: img.width, tokens: imageTokens, clsOff: layout.of(vit.params.cls) }), grid(Math.ceil((img.rows * img.width) / 256)));
    this.blocksForward(img, ib, P);
    // Image head: final LN over every token, mean pool, projection, L2.
    this.layerNorm(img.rows, img.width, img.lnFinal, ib.hs[img.blocks.length], imgF, imgStatsF, P);
    this.pool('pool', imgF, ib.features, B, imageTokens, img.width, 'mean');
    this.gemm({ M: B, N: embed, K: img.width, bOff: img.proj }, ib.features, P, ib.z);
    this.add('l2Norm', [ib.z, ib.e, ib.rn], l2NormUniform({ rows: B, width: embed }), grid(B));

    // Text tower.
    this.add('tokenEmbedding', [P, this.ids, this.positions, tb.hs[0]], tokenEmbeddingUniform({ rows: txt.rows, width: txt.width, tokensOff: layout.of(enc.params.tokens), positionsOff: layout.of(enc.params.positions) }), grid(Math.ceil((txt.rows * txt.width) / 256)));
    this.blocksForward(txt, tb, P);
    this.pool('pool', tb.hs[txt.blocks.length], txtPooled, B, textTokens, txt.width, 'first');
    this.layerNorm(B, txt.width, txt.lnFinal, txtPooled, tb.features, txtStatsF, P);
    this.gemm({ M: B, N: embed, K: txt.width, bOff: txt.proj }, tb.features, P, tb.z);
    this.add('l2Norm', [tb.z, tb.e, tb.rn], l2NormUniform({ rows: B, width: embed }), grid(B));

    // Loss.
    const logScaleOff = layout.of(model.logitScale);
    this.gemm({ M: B, N: B, K: embed, flags: F.transB }, ib.e, tb.e, S);
    this.add('contrastive', [S, P, lseS, dS, G, flat.out], contrastiveUniform({ batch: B, logScaleOff }), [1, 1, 1]);
    this.clears.push({ buffer: flat.out, offset: 8, size: 4 }); // the reconstruction loss: 0 unless the decoder runs
    // The MAE decoder runs only when patches were removed; otherwise its parameters get no gradient, and AdamW skips
    // them as the other engines' AdamW skips a parameter without a gradient.
    const decoder = model.decoder;
    const runDecoder = decoder !== null && imageTokens - 1 < vit.numPatches;
    this.skip = decoder && !runDecoder ? [layout.optionalStart, layout.optionalEnd] : [0, 0];
    let dec: DecoderState | null = null;
    if (decoder && runDecoder) {
      const grid2 = vit.numPatches + 1;
      const ds = towerShape(layout, decoder.blocks, decoder.ln, null, B, grid2, decoder.cfg.width, decoder.cfg.heads);
      const Nd = ds.rows;
      const mae = {
        source: buf(Nd, 'decoder source rows'),
        target: buf(Nd * pv, 'decoder targets'),
        weight: buf(Nd, 'decoder row weights'),
        segments: buf(segmentWords(Nd), 'decoder source segments'),
        segmentHost: new Uint32Array(segmentWords(Nd)),
      };
      this.mae = mae;
      const positions = new Float32Array(grid2 * ds.width);
      positions.set(sinCos2d(decoder.gridSize, ds.width), ds.width); // row 0 (CLS): zero
      const posTable = buf(positions.length, 'decoder positions');
      device.queue.writeBuffer(posTable, 0, positions);
      const db = this.towerBuffers(ds, buf, 'decoder', buf(Nd, 'decoder key bias'));
      const offsets = { embedW: layout.of(decoder.embedW), embedB: layout.of(decoder.embedB), mask: layout.of(decoder.maskToken), predW: layout.of(decoder.predW), predB: layout.of(decoder.predB) };
      dec = { shape: ds, buffers: db, offsets, z: buf(img.rows * ds.width, 'decoder embedded'), dz: buf((img.rows + 1) * ds.width, 'decoder embedded grad'), h: buf(Nd * ds.width, 'decoder final LN'), stats: buf(2 * Nd, 'decoder final LN stats'), pred: buf(Nd * pv, 'decoder prediction'), dPred: buf(Nd * pv, 'decoder prediction grad') };
      const o = offsets;
      this.gemm({ M: img.rows, N: ds.width, K: img.width, bOff: o.embedW, biasOff: o.embedB, flags: F.bias }, imgF, P, dec.z, P);
      this.add('decoderInput', [dec.z, P, posTable, mae.source, db.hs[0]], decoderInputUniform({ rows: Nd, width: ds.width, tokens: grid2, maskRow: img.rows, maskOff: o.mask }), grid(Math.ceil((Nd * ds.width) / 256)));
      this.blocksForward(ds, db, P);
      this.layerNorm(Nd, ds.width, ds.lnFinal, db.hs[ds.blocks.length], dec.h, dec.stats, P);
      this.gemm({ M: Nd, N: pv, K: ds.width, bOff: o.predW, biasOff: o.predB, flags: F.bias }, dec.h, P, dec.pred, P);
      this.add('patchLoss', [dec.pred, mae.target, mae.weight, dec.dPred, flat.out], patchLossUniform({ rows: Nd, patchValues: pv, weight: model.reconstructionWeight }), [1, 1, 1]);
    }

    // Backward: the head.
    this.gemm({ M: B, N: embed, K: B }, dS, tb.e, ib.de);
    this.gemm({ M: B, N: embed, K: B, flags: F.transA }, dS, ib.e, tb.de);
    for (const t of [ib, tb]) this.add('l2NormBackward', [t.de, t.e, t.rn, t.dz], l2NormUniform({ rows: B, width: embed }), grid(B));
    for (const [s, t] of [[img, ib], [txt, tb]] as const) {
      this.gemm({ M: s.width, N: embed, K: B, flags: F.transA, cOff: s.proj }, t.features, t.dz, G);
      this.gemm({ M: B, N: s.width, K: embed, bOff: s.proj, flags: F.transB }, t.dz, P, t.dFeatures);
    }
    // Image: through the mean pool (and the decoder) and the final LN.
    this.pool('unpool', ib.dFeatures, ib.dtmp, B, imageTokens, img.width, 'mean');
    let dImgF = ib.dtmp;
    if (dec) {
      const { shape: ds, buffers: db, offsets: o } = dec;
      const Nd = ds.rows;
      const mae = this.mae!;
      this.weightGrad({ M: ds.width, N: pv, K: Nd, flags: F.transA, cOff: o.predW, biasOff: o.predB }, dec.h, dec.dPred);
      this.gemm({ M: Nd, N: ds.width, K: pv, bOff: o.predW, flags: F.transB }, dec.dPred, P, db.dtmp);
      this.layerNormBackward(Nd, ds.width, ds.lnFinal, db.dtmp, db.hs[ds.blocks.length], dec.stats, null, db.gCur, P, G);
      this.blocksBackward(ds, db, P, G);
      // Each encoder row feeds one decoder row; the mask token feeds every removed patch's row (the extra last row).
      this.clears.push({ buffer: dec.dz, offset: 0, size: dec.dz.size });
      const a = { rows: Nd, width: ds.width, outOff: 0 };
      this.add('scatterRows', [db.gCur, mae.segments, dec.dz], scatterRowsUniform(a), grid(scatterRowsGroups(a)));
      this.columnSum({ rows: img.rows + 1, D: ds.width, rowStart: img.rows, outOff: o.mask }, dec.dz, G);
      this.weightGrad({ M: img.width, N: ds.width, K: img.rows, flags: F.transA, cOff: o.embedW, biasOff: o.embedB }, imgF, dec.dz);
      this.gemm({ M: img.rows, N: img.width, K: ds.width, bOff: o.embedW, flags: F.transB | F.residual }, dec.dz, P, ib.gOther, null, ib.dtmp);
      dImgF = ib.gOther;
    }
    this.layerNormBackward(img.rows, img.width, img.lnFinal, dImgF, ib.hs[img.blocks.length], imgStatsF, null, ib.gCur, P, G);
    this.blocksBackward(img, ib, P, G);
    // The patch embedding's parameters.
    this.weightGrad({ M: pv, N: img.width, K: img.rows, flags: F.transA, cOff: layout.of(vit.params.patchW), biasOff: layout.of(vit.params.patchB) }, this.pixels, ib.gCur);
    this.columnSum({ rows: img.rows, D: img.width, rowStep: imageTokens, outOff: layout.of(vit.params.cls) }, ib.gCur, G);

    // Text: the final LN of the pooled rows, back to the first tokens.
    const dTxtPooled = buf(B * txt.width, 'text pooled gradient');
    this.layerNormBackward(B, txt.width, txt.lnFinal, tb.dFeatures, txtPooled, txtStatsF, null, dTxtPooled, P, G);
    this.pool('unpool', dTxtPooled, tb.gCur, B, textTokens, txt.width, 'first');
    this.blocksBackward(txt, tb, P, G);
    // Token and position tables: only the rows of this batch's ids and positions get a gradient; the rest are zeroed.
    const tokensOff = layout.of(enc.params.tokens);
    const positionsOff = layout.of(enc.params.positions);
    this.clears.push({ buffer: G, offset: tokensOff * 4, size: enc.params.tokens.size * 4 }, { buffer: G, offset: positionsOff * 4, size: enc.params.positions.size * 4 });
    for (const [seg, off] of [[this.tokenSegments, tokensOff], [this.positionSegments, positionsOff]] as const) {
      const a = { rows: txt.rows, width: txt.width, outOff: off };
      this.add('scatterRows', [tb.gCur, seg, G], scatterRowsUniform(a), grid(scatterRowsGroups(a)));
    }

    // AdamW over everything; its uniform block is rewritten every step.
    this.adamwSlot = this.specs.length;
    const idle = { size: layout.size, decayEnd: layout.decayEnd, logScaleOff, skipStart: 0, skipEnd: 0, lr: 0, beta1: 0, beta2: 0, eps: 1, weightDecay: 0, c1: 1, c2: 1, vFloor: 0, logScaleMax: 0 };
    this.add('adamw', [P, G, flat.m, flat.v, flat.out], adamwUniform(idle), grid(Math.ceil(layout.size / ADAMW_THREADS)));

    // The partials buffer, now that its size is known.
    this.partials = buf(this.partialFloats, 'partials');
    placeholder.destroy();
    for (const spec of this.specs) spec.buffers = spec.buffers.map((b) => (b === placeholder ? this.partials : b));

    // Uniform blocks and bind groups, all at once.
    this.uniforms = buf((this.specs.length * UNIFORM_SLOT) / 4, 'uniforms', USAGE.UNIFORM | USAGE.COPY_DST);
    const host = new Uint8Array(this.specs.length * UNIFORM_SLOT);
    this.specs.forEach((s, i) => host.set(new Uint8Array(s.uniform), i * UNIFORM_SLOT));
    device.queue.writeBuffer(this.uniforms, 0, host);
    const all = this.specs.map((s, i) => ({
      kernel: s.kernel,
      grid: s.grid,
      bindGroup: device.createBindGroup({
        layout: pipeline(device, s.kernel).getBindGroupLayout(0),
        entries: [
          ...s.buffers.map((b, j) => ({ binding: j, resource: { buffer: b } })),
          { binding: s.buffers.length, resource: { buffer: this.uniforms, offset: i * UNIFORM_SLOT, size: s.uniform.byteLength } },
        ],
        label: `${s.kernel} #${i}`,
      }),
    }));
    this.adamw = all[this.adamwSlot];
    this.dispatches = all.slice(0, this.adamwSlot);
    this.bytes = this.owned.reduce((n, b) => n + b.size, 0);
    this.layoutSize = layout.size;
    this.decayEnd = layout.decayEnd;
    this.logScaleOff = logScaleOff;
  }

  static keyOf(batch: number, imageTokens: number, textTokens: number): string {
    return `${batch}:${imageTokens}:${textTokens}`;
  }

  /** Dispatches per step (forward, backward and AdamW). */
  get dispatchCount(): number {
    return this.dispatches.length + 1;
  }

  /** Writes one batch into the plan's input buffers. */
  upload(batch: ModelBatch, padId: number): void {
    const q = this.device.queue;
    q.writeBuffer(this.pixels, 0, batch.image.pixels);
    q.writeBuffer(this.keep, 0, batch.image.keep);
    q.writeBuffer(this.ids, 0, batch.ids);
    q.writeBuffer(this.positions, 0, batch.positions);
    for (let i = 0; i < batch.ids.length; i++) this.biasHost[i] = batch.ids[i] === padId ? PAD_BIAS : 0;
    q.writeBuffer(this.keyBias, 0, this.biasHost);
    segments(batch.ids, this.segmentHost);
    q.writeBuffer(this.tokenSegments, 0, this.segmentHost);
    segments(batch.positions, this.segmentHost);
    q.writeBuffer(this.positionSegments, 0, this.segmentHost);
    if (this.mae) {
      if (!batch.mae) throw new Error('StepPlan.upload: the MAE decoder is on but the batch has no reconstruction targets (batch.mae)');
      q.writeBuffer(this.mae.source, 0, batch.mae.sourceRows);
      q.writeBuffer(this.mae.target, 0, batch.mae.target);
      q.writeBuffer(this.mae.weight, 0, batch.mae.weight);
      segments(batch.mae.sourceRows, this.mae.segmentHost);
      q.writeBuffer(this.mae.segments, 0, this.mae.segmentHost);
    }
  }

  /** Records the loss and every gradient (forward and backward) into `encoder`. */
  recordLossAndGradients(encoder: GPUCommandEncoder): void {
    for (const c of this.clears) encoder.clearBuffer(c.buffer, c.offset, c.size);
    this.replay(encoder, this.dispatches);
  }

  /** Sets AdamW's step values (a uniform write) and records its one dispatch. */
  recordUpdate(encoder: GPUCommandEncoder, step: Omit<AdamWArgs, 'size' | 'decayEnd' | 'logScaleOff' | 'vFloor' | 'logScaleMax' | 'skipStart' | 'skipEnd'>, vFloor: number, logScaleMax: number): void {
    const [skipStart, skipEnd] = this.skip;
    const u = adamwUniform({ ...step, size: this.layoutSize, decayEnd: this.decayEnd, logScaleOff: this.logScaleOff, skipStart, skipEnd, vFloor, logScaleMax });
    this.device.queue.writeBuffer(this.uniforms, this.adamwSlot * UNIFORM_SLOT, u);
    this.replay(encoder, [this.adamw]);
  }

  destroy(): void {
    for (const b of this.owned) b.destroy();
  }

  private replay(encoder: GPUCommandEncoder, list: Dispatch[]): void {
    const pass = encoder.beginComputePass();
    let last: KernelName | null = null;
    for (const d of list) {
      if (d.kernel !== last) pass.setPipeline(pipeline(this.device, d.kernel));
      last = d.kernel;
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.grid[0], d.grid[1], d.grid[2]);
    }
    pass.end();
  }

  private add(kernel: KernelName, buffers: GPUBuffer[], uniform: ArrayBuffer, g: [number, number, number]): void {
    this.specs.push({ kernel, buffers, uniform, grid: g });
  }

  private gemm(a: GemmArgs, A: GPUBuffer, B: GPUBuffer, C: GPUBuffer, bias: GPUBuffer | null = null, aux: GPUBuffer | null = null): void {
    this.add('gemm', [A, B, C, bias ?? this.dummy, aux ?? this.dummy], gemmUniform(a), gemmGrid(a));
  }

  private columnSum(a: ColumnSumArgs, x: GPUBuffer, out: GPUBuffer): void {
    this.add('columnSum', [x, out], columnSumUniform(a), columnSumGrid(a));
  }

  private layerNorm(rows: number, D: number, [g, b]: [number, number], x: GPUBuffer, y: GPUBuffer, stats: GPUBuffer, P: GPUBuffer): void {
    this.add('layerNorm', [x, P, y, stats], layerNormUniform({ rows, D, gammaOff: g, betaOff: b, eps: LN_EPS }), grid(rows));
  }

  /** dx = LN'(dy) (+ residual); and the LN's gamma/beta gradients. */
  private layerNormBackward(rows: number, D: number, [g, b]: [number, number], dy: GPUBuffer, x: GPUBuffer, stats: GPUBuffer, residual: GPUBuffer | null, dx: GPUBuffer, P: GPUBuffer, G: GPUBuffer): void {
    this.add('layerNormBackward', [dy, x, stats, P, residual ?? this.dummy, dx], layerNormBackwardUniform({ rows, D, gammaOff: g, residual: residual !== null }), grid(rows));
    const a = { rows, D, rowChunk: this.splitRows };
    const S = layerNormParamGradChunks(a);
    this.partialFloats = Math.max(this.partialFloats, S * 2 * D);
    this.add('layerNormParamGrad', [dy, x, stats, this.partials], layerNormParamGradUniform(a), layerNormParamGradGrid(a));
    const sum = { S, M: 1, N: D, cOff: g, biasOff: b };
    this.add('sumPartials', [this.partials, G], sumPartialsUniform(sum), grid(sumPartialsGroups(sum)));
  }

  /**
   * A weight's gradient (C = op(A) B over the batch's token rows, into the flat gradient buffer at cOff) and, with
   * biasOff, its bias's (the column sums of B), as chunked partial products and their sum.
   */
  private weightGrad(a: Omit<GemmArgs, 'cOff' | 'cZ' | 'biasOff' | 'biasZ' | 'kSplit' | 'kChunk'> & { cOff: number; cZ?: number; biasOff: number | null; biasZ?: number }, A: GPUBuffer, B: GPUBuffer): void {
    const Z = a.Z ?? 1;
    const cap = Math.min(PARTIAL_MAX_FLOATS, Math.floor(this.device.limits.maxStorageBufferBindingSize / 4));
    const { kSplit, kChunk } = splitK(a.K, a.M, a.N, Z, this.splitRows, cap);
    this.partialFloats = Math.max(this.partialFloats, Z * kSplit * (a.M + 1) * a.N);
    this.gemm({ ...a, cOff: 0, cZ: 0, biasOff: 0, biasZ: 0, flags: (a.flags ?? 0) | F.partial, kSplit, kChunk }, A, B, this.partials);
    const sum = { S: kSplit, M: a.M, N: a.N, Z, cOff: a.cOff, cZ: a.cZ ?? 0, biasOff: a.biasOff, biasZ: a.biasZ ?? 0 };
    this.add('sumPartials', [this.partials, this.flat.grads], sumPartialsUniform(sum), grid(sumPartialsGroups(sum)));
  }

  private pool(kernel: 'pool' | 'unpool', src: GPUBuffer, dst: GPUBuffer, batch: number, tokens: number, width: number, mode: PoolMode): void {
    const n = kernel === 'pool' ? batch * width : batch * tokens * width;
    this.add(kernel, [src, dst], poolUniform({ batch, tokens, width, mode }), grid(Math.ceil(n / 256)));
  }

  private towerBuffers(s: TowerShape, buf: (floats: number, label: string, usage?: number) => GPUBuffer, name: string, keyBias: GPUBuffer): TowerBuffers {
    const nd = s.rows * s.width;
    const B = s.batch;
    return {
      hs: Array.from({ length: s.blocks.length + 1 }, (_, l) => buf(nd, `${name} h${l}`)),
      layers: s.blocks.map((_, l) => ({
        a: buf(nd, `${name} block${l} ln1`),
        stats1: buf(2 * s.rows, `${name} block${l} ln1 stats`),
        qkv: buf(3 * nd, `${name} block${l} qkv`),
        o: buf(nd, `${name} block${l} attention`),
        lse: buf(B * s.heads * s.tokens, `${name} block${l} lse`),
        mid: buf(nd, `${name} block${l} mid`),
        c: buf(nd, `${name} block${l} ln2`),
        stats2: buf(2 * s.rows, `${name} block${l} ln2 stats`),
        u: buf(s.rows * s.hidden, `${name} block${l} mlp`),
      })),
      keyBias,
      gCur: buf(nd, `${name} grad a`),
      gOther: buf(nd, `${name} grad b`),
      dtmp: buf(nd, `${name} grad tmp`),
      du: buf(s.rows * s.hidden, `${name} mlp grad`),
      dO: buf(nd, `${name} attention grad`),
      dqkv: buf(3 * nd, `${name} qkv grad`),
      scratch: buf(2 * B * s.heads * s.tokens * s.tokens, `${name} attention scratch`),
      features: buf(B * s.width, `${name} features`),
      z: buf(B * s.embed, `${name} projected`),
      e: buf(B * s.embed, `${name} embedding`),
      rn: buf(B, `${name} 1/norm`),
      de: buf(B * s.embed, `${name} embedding grad`),
      dz: buf(B * s.embed, `${name} projected grad`),
      dFeatures: buf(B * s.width, `${name} features grad`),
    };
  }

  private attentionArgs(s: TowerShape): AttentionArgs {
    return { batch: s.batch, tokens: s.tokens, heads: s.heads, width: s.width };
  }

  private blocksForward(s: TowerShape, t: TowerBuffers, P: GPUBuffer): void {
    const N = s.rows;
    const D = s.width;
    s.blocks.forEach((o, l) => {
      const x = t.layers[l];
      this.layerNorm(N, D, o.ln1, t.hs[l], x.a, x.stats1, P);
      this.gemm({ M: N, N: D, K: D, Z: 3, bOff: o.wqkv, bZ: D * D, cZ: N * D, biasOff: o.bqkv, biasZ: D, flags: F.bias }, x.a, P, x.qkv, P);
      const at = this.attentionArgs(s);
      this.add('attention', [x.qkv, t.keyBias, x.o, x.lse], attentionUniform(at), grid(attentionGroups(at)));
      this.gemm({ M: N, N: D, K: D, bOff: o.wo, biasOff: o.bo, flags: F.bias | F.residual }, x.o, P, x.mid, P, t.hs[l]);
      this.layerNorm(N, D, o.ln2, x.mid, x.c, x.stats2, P);
      this.gemm({ M: N, N: s.hidden, K: D, bOff: o.w1, biasOff: o.b1, flags: F.bias }, x.c, P, x.u, P);
      this.gemm({ M: N, N: D, K: s.hidden, bOff: o.w2, biasOff: o.b2, flags: F.bias | F.geluA | F.residual }, x.u, P, t.hs[l + 1], P, x.mid);
    });
  }

  /** The blocks' backward pass; the gradient of the blocks' output is in t.gCur, and so is their input's after. */
  private blocksBackward(s: TowerShape, t: TowerBuffers, P: GPUBuffer, G: GPUBuffer): void {
    const N = s.rows;
    const D = s.width;
    const M = s.hidden;
    for (let l = s.blocks.length - 1; l >= 0; l--) {
      const o = s.blocks[l];
      const x = t.layers[l];
      const dy = t.gCur;
      // MLP.
      this.weightGrad({ M: M, N: D, K: N, flags: F.transA | F.geluA, cOff: o.w2, biasOff: o.b2 }, x.u, dy);
      this.gemm({ M: N, N: M, K: D, bOff: o.w2, flags: F.transB | F.geluGrad }, dy, P, t.du, null, x.u);
      this.weightGrad({ M: D, N: M, K: N, flags: F.transA, cOff: o.w1, biasOff: o.b1 }, x.c, t.du);
      this.gemm({ M: N, N: D, K: M, bOff: o.w1, flags: F.transB }, t.du, P, t.dtmp);
      this.layerNormBackward(N, D, o.ln2, t.dtmp, x.mid, x.stats2, dy, t.gOther, P, G);
      // Attention.
      const dmid = t.gOther;
      this.weightGrad({ M: D, N: D, K: N, flags: F.transA, cOff: o.wo, biasOff: o.bo }, x.o, dmid);
      this.gemm({ M: N, N: D, K: D, bOff: o.wo, flags: F.transB }, dmid, P, t.dO);
      const at = this.attentionArgs(s);
      const u = attentionUniform(at);
      this.add('attentionBackwardQuery', [x.qkv, t.keyBias, x.lse, t.dO, x.o, t.scratch, t.dqkv], u, grid(attentionGroups(at)));
      this.add('attentionBackwardKey', [x.qkv, t.dO, t.scratch, t.dqkv], u, grid(attentionGroups(at)));
      this.weightGrad({ M: D, N: D, K: N, Z: 3, bZ: N * D, cOff: o.wqkv, cZ: D * D, biasOff: o.bqkv, biasZ: D, flags: F.transA }, x.a, t.dqkv);
      this.gemm({ M: N, N: D, K: D, Z: 3, aZ: N * D, bOff: o.wqkv, bZ: D * D, flags: F.transB | F.sumZ }, t.dqkv, P, t.dtmp);
      this.layerNormBackward(N, D, o.ln1, t.dtmp, t.hs[l], x.stats1, dmid, t.gCur, P, G);
    }
  }
}

function towerShape(
  layout: ParamLayout,
  blocks: BlockParams[],
  lnFinal: LayerNormParams,
  proj: tf.Variable | null,
  batch: number,
  tokens: number,
  width: number,
  heads: number,
): TowerShape {
  const ln = (p: LayerNormParams): [number, number] => [layout.of(p.gamma), layout.of(p.beta)];
  return {
    batch,
    tokens,
    rows: batch * tokens,
    width,
    heads,
    hidden: blocks.length ? (blocks[0].mlp.w1.shape[1] as number) : 0,
    embed: proj ? (proj.shape[1] as number) : 0,
    blocks: blocks.map((b) => ({
      ln1: ln(b.ln1),
      wqkv: layout.run(b.attn.wq, b.attn.wk, b.attn.wv),
      bqkv: layout.run(b.attn.bq, b.attn.bk, b.attn.bv),
      wo: layout.of(b.attn.wo),
      bo: layout.of(b.attn.bo),
      ln2: ln(b.ln2),
      w1: layout.of(b.mlp.w1),
      b1: layout.of(b.mlp.b1),
      w2: layout.of(b.mlp.w2),
      b2: layout.of(b.mlp.b2),
    })),
    lnFinal: ln(lnFinal),
    proj: proj ? layout.of(proj) : 0,
  };
}
