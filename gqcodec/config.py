"""The GQ-VAE's configuration (the JSON in every weights file's metadata) without the network:
importing it needs no torch, so the registry, the ladder and the header checks stay cheap."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

STRIDE = 16


@dataclass
class GQConfig:
    N: int = 128              # transform width
    C: int = 320              # latent channels
    m: int = 16               # block size (dims per GQ index)
    K_bits: int = 16          # codebook size K = 2**K_bits
    seed: int = 0             # codebook seed
    beta: float = 1.0         # prior weight in the GQ score
    logvar_min: float = -30.0
    logvar_max: float = 20.0

    def __post_init__(self):
        if self.C % self.m:
            raise ValueError(f"C={self.C} is not a multiple of m={self.m}")

    @property
    def blocks(self) -> int:
        return self.C // self.m

    @property
    def K(self) -> int:
        return 1 << self.K_bits

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GQConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)
