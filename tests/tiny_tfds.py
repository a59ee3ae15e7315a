"""A tiny TFDS image dataset built locally, so the real TFDS code path runs without a download.

Importing this module registers the TFDS builder ``kal_tiny_images``: 8x8x1 uint8 images of
three classes (class k brightens rows 2k and 2k+1), 90 training and 45 test images.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

NAME = "kal_tiny_images"


class KalTinyImages(tfds.core.GeneratorBasedBuilder):
    """Three classes of 8x8 images, generated from a fixed seed (no download)."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self) -> tfds.core.DatasetInfo:
        # DatasetInfo directly: dataset_info_from_configs reads metadata files next to the module.
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(8, 8, 1)),
                    "label": tfds.features.ClassLabel(num_classes=3),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(0, 90), "test": self._generate_examples(1, 45)}

    def _generate_examples(self, seed: int, count: int):
        rng = np.random.default_rng(seed)
        for index in range(count):
            label = index % 3
            image = (rng.random((8, 8, 1)) * 80).astype(np.uint8)
            image[2 * label : 2 * label + 2] += 150
            yield index, {"image": image, "label": label}


def prepare(data_dir: str) -> str:
    """Builds the dataset under ``data_dir`` (no network: no GCS lookup); returns its name."""
    builder = tfds.builder(NAME, data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
    )
    return NAME
