/**
 * Named model sizes, applied over DEFAULTS before what the user wrote (models/config.ts resolveConfig).
 */
import type { DeepPartial, TrainConfig } from './config.js';

/** Model presets. CPU sizes keep the paper's proportions (heads = width / 32 here, text as wide as the image tower at
 * small sizes); B/16, L/16 and H/14 are Table 9 of the paper, for GPU users. */
export const PRESETS: Record<string, DeepPartial<TrainConfig['model']>> = {
  tiny: {
    embed_dim: 64,
    image: { patch_size: 4, width: 64, depth: 2, heads: 2, mlp_ratio: 4 },
    text: { width: 64, depth: 2, heads: 2, mlp_ratio: 4 },
    decoder: { width: 64, depth: 1, heads: 2, mlp_ratio: 4 },
  },
  mini: {
    embed_dim: 96,
    image: { patch_size: 4, width: 96, depth: 3, heads: 3, mlp_ratio: 4 },
    text: { width: 96, depth: 3, heads: 3, mlp_ratio: 4 },
    decoder: { width: 64, depth: 1, heads: 2, mlp_ratio: 4 },
  },
  small: {
    embed_dim: 128,
    image: { patch_size: 4, width: 128, depth: 4, heads: 4, mlp_ratio: 4 },
    text: { width: 128, depth: 4, heads: 4, mlp_ratio: 4 },
    decoder: { width: 96, depth: 2, heads: 3, mlp_ratio: 4 },
  },
  medium: {
    embed_dim: 192,
    image: { patch_size: 4, width: 256, depth: 6, heads: 8, mlp_ratio: 4 },
    text: { width: 192, depth: 6, heads: 6, mlp_ratio: 4 },
    decoder: { width: 128, depth: 2, heads: 4, mlp_ratio: 4 },
  },
  'B/16': {
    embed_dim: 512,
    image: { patch_size: 16, width: 768, depth: 12, heads: 12, mlp_ratio: 4 },
    text: { width: 512, depth: 12, heads: 8, mlp_ratio: 4 },
    decoder: { width: 512, depth: 8, heads: 16, mlp_ratio: 4 },
  },
  'L/16': {
    embed_dim: 768,
    image: { patch_size: 16, width: 1024, depth: 24, heads: 16, mlp_ratio: 4 },
    text: { width: 768, depth: 12, heads: 12, mlp_ratio: 4 },
    decoder: { width: 512, depth: 8, heads: 16, mlp_ratio: 4 },
  },
  'H/14': {
    embed_dim: 1024,
    image: { patch_size: 14, width: 1280, depth: 32, heads: 16, mlp_ratio: 4 },
    text: { width: 1024, depth: 24, heads: 16, mlp_ratio: 4 },
    decoder: { width: 512, depth: 8, heads: 16, mlp_ratio: 4 },
  },
};
/** Annotated so that the config declaration, which lists these names, does not depend on the presets' type. */
export const PRESET_NAMES: string[] = Object.keys(PRESETS);
