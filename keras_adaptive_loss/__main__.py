"""``python -m keras_adaptive_loss compare ...`` runs the ``keras-adaptive-loss`` CLI."""

import sys

from keras_adaptive_loss.cli import main

sys.exit(main())
