"""NumPy random-generator state as a fixed-size int64 array, so it fits in a checkpoint.

`keras.callbacks.BackupAndRestore` saves weights only, so a controller's random streams must
live in variables to resume bit-exactly. A PCG64 state is two 128-bit integers (state,
increment) and a buffered 32-bit draw; `encode` packs them into six int64 words.

>>> import numpy as np
>>> generator = np.random.default_rng(3)
>>> words = encode(generator)
>>> first = generator.random(2)
>>> decode(words, generator)
>>> bool((generator.random(2) == first).all())
True
"""

from __future__ import annotations

import numpy as np

__all__ = ["SIZE", "decode", "encode"]

SIZE = 6
_MASK = (1 << 64) - 1


def _words(value: int) -> list[int]:
    return [value & _MASK, (value >> 64) & _MASK]


def _signed(word: int) -> int:
    return word - (1 << 64) if word >= 1 << 63 else word


def encode(generator: np.random.Generator) -> np.ndarray:
    """``[state_lo, state_hi, inc_lo, inc_hi, has_uint32, uinteger]`` as int64."""
    state = generator.bit_generator.state
    if state["bit_generator"] != "PCG64":
        raise ValueError(f"Only PCG64 generators can be encoded; got {state['bit_generator']}.")
    words = [
        *_words(state["state"]["state"]),
        *_words(state["state"]["inc"]),
        int(state["has_uint32"]),
        int(state["uinteger"]),
    ]
    return np.array([_signed(word) for word in words], dtype="int64")


def decode(words: np.ndarray, generator: np.random.Generator) -> None:
    """Sets ``generator`` (PCG64) to the state ``encode`` produced."""
    unsigned = [int(word) & _MASK for word in np.asarray(words, dtype="int64").reshape(-1)]
    if len(unsigned) != SIZE:
        raise ValueError(f"A generator state has {SIZE} words; got {len(unsigned)}.")
    generator.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {
            "state": unsigned[0] | (unsigned[1] << 64),
            "inc": unsigned[2] | (unsigned[3] << 64),
        },
        "has_uint32": unsigned[4],
        "uinteger": unsigned[5],
    }
