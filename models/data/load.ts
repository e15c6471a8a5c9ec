/** data.dataset -> a Dataset. Every source is deterministic for config.seed, and its train and eval splits are disjoint. */
import type { TrainConfig } from '../config.js';
import { CONFIG_FIELDS } from '../config-fields.js';
import type { Dataset } from './dataset.js';
import { ConfigError } from '../events.js';
import { shapesDataset } from './shapes.js';

/** The dataset names the config declares (models/config-fields.ts). */
export const DATASET_NAMES = CONFIG_FIELDS.fields.data.fields.dataset.values;

export async function loadDataset(config: TrainConfig): Promise<Dataset> {
  const { dataset, train_size, eval_size, image_size, path } = config.data;
  switch (dataset) {
    case 'shapes':
      return shapesDataset(config.seed, train_size, eval_size, image_size);
    case 'glyphs':
    case 'glyphs-faint':
    case 'glyphs-24': {
      const { glyphsDataset } = await import('./glyphs.js');
      return glyphsDataset(config.seed, train_size, eval_size, image_size, dataset);
    }
    case 'emoji': {
      const { emojiDataset } = await import('./emoji.js');
      return emojiDataset(config.seed, train_size, eval_size, image_size);
    }
    case 'fashion-mnist': {
      const { fashionMnistDataset } = await import('./fashion-mnist.js');
      return fashionMnistDataset(config.seed, train_size, eval_size, image_size, path);
    }
    case 'folder': {
      const { folderDataset } = await import('./folder.js');
      return folderDataset(config.seed, train_size, eval_size, image_size, path);
    }
    case 'webdataset': {
      const { webdatasetDataset } = await import('./webdataset.js');
      const { train, val, classnames } = config.data;
      return webdatasetDataset({ seed: config.seed, trainSize: train_size, evalSize: eval_size, imageSize: image_size, train, val, classNames: classnames });
    }
    default:
      throw new ConfigError(
        'data.dataset',
        `unknown dataset "${String(dataset)}"; known: ${DATASET_NAMES.join(', ')}`,
      );
  }
}
