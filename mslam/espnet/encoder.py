"""`encoder: mslam`: the speech path of a pre-trained mslam JointEncoder, as an ESPnet encoder.

    encoder: mslam
    encoder_conf:
        checkpoint: exp/pretrain/checkpoints/step-00010000   # or exp/pretrain (its newest intact one)
        freeze_steps: 1000     # no update of the mslam encoder during the first 1000 training forwards
        cmvn: auto             # auto | none | path to cmvn.npz

Input: 80-d log-mel fbank [B, T, 80] as mslam computes it (`frontend: mslam_fbank` on raw audio,
or features dumped by `python -m mslam.bin.compute_fbank` with `frontend: null, input_size: 80`),
*not* normalised: the encoder applies the global CMVN of pre-training itself, so ESPnet's
`normalize` must be null. Output: the top layer of the encoder's speech path,
`JointEncoder.forward(feats, lengths)`, [B, T/4, d_model], with its lengths.

The encoder is built from the model config stored in the checkpoint (no config to repeat here) and
gets the checkpoint's `encoder.*` weights, less the text front end (speech only).
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from espnet2.asr.encoder.abs_encoder import AbsEncoder

from mslam.config import ConfigError, load_config
from mslam.data.features import CMVNStats
from mslam.model.conformer import lengths_to_valid
from mslam.model.encoder import JointEncoder, ModelConfig
from mslam.train.checkpoint import CheckpointError, load_model_state

log = logging.getLogger("mslam.espnet")
ENCODER_PREFIX = "encoder."
SKIPPED_PREFIX = "text_frontend."   # the speech path does not use it
WRAPPER_PREFIXES = ("module.", "_orig_mod.")  # DDP / torch.compile wrappers, should a state carry them


def _strip_wrappers(key: str) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def read_checkpoint(path: str | Path) -> tuple[Path, ModelConfig, dict, dict[str, torch.Tensor]]:
    """(resolved path, model config, the whole config dict, the speech encoder's state dict)."""
    model, config, path = load_model_state(path)
    try:
        model_cfg = load_config(config.get("model") or {}, ModelConfig)
    except (ConfigError, ValueError) as e:
        raise CheckpointError(f"{path}: the model config stored in the checkpoint is not usable: {e}") from e
    weights = {}
    for key, value in model.items():
        key = _strip_wrappers(key)
        if key.startswith(ENCODER_PREFIX) and not key.startswith(ENCODER_PREFIX + SKIPPED_PREFIX):
            weights[key[len(ENCODER_PREFIX):]] = value
    if not weights:
        raise CheckpointError(f"{path}: the checkpoint's model has no 'encoder.*' weights")
    return path, model_cfg, config, weights


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], where: Path) -> None:
    """load_state_dict(strict) with one readable error naming what does not fit."""
    own = module.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    shapes = [f"{k}: checkpoint {tuple(weights[k].shape)}, model {tuple(own[k].shape)}"
              for k in own if k in weights and weights[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        def few(items):
            return ", ".join(items[:5]) + (f" (+{len(items) - 5} more)" if len(items) > 5 else "")
        parts = [f"missing {few(missing)}" if missing else "", f"unexpected {few(unexpected)}" if unexpected else "",
                 f"other shape {few(shapes)}" if shapes else ""]
        raise CheckpointError(f"{where}: the encoder weights do not fit the encoder its config describes: "
                              + "; ".join(p for p in parts if p))
    module.load_state_dict(weights, strict=True)


class MslamEncoder(AbsEncoder):
    """ESPnet encoder wrapping mslam's JointEncoder speech path, loaded from an mslam checkpoint.

    freeze_steps: during the first K forward passes in training mode (K optimizer steps without
    gradient accumulation, K / accum_grad steps with it) the mslam encoder runs under no_grad and in
    eval mode (no dropout; a fixed feature extractor): its parameters get no gradient and so no
    update, while the rest of the ESPnet model (CTC, decoder) trains. The count is a buffer
    (`num_updates`), saved in ESPnet's checkpoints, so a resumed run keeps counting. Validation and
    decoding (eval mode) do not count. Multi-GPU (DDP) runs with freeze_steps > 0 need ESPnet's
    `unused_parameters: true`.

    cmvn: `auto` applies the global CMVN statistics the checkpoint was pre-trained with (its
    `data.cmvn`, a path as the pre-training run saw it; if that file cannot be found from here, name
    it); a path uses that cmvn.npz; `none` applies none. The statistics become buffers of this
    module, so ESPnet's model files carry them.
    """

    def __init__(self, input_size: int, checkpoint: str, freeze_steps: int = 0, cmvn: str | None = "auto"):
        super().__init__()
        if freeze_steps < 0:
            raise ValueError(f"encoder_conf freeze_steps must be >= 0, got {freeze_steps}")
        path, model_cfg, config, weights = read_checkpoint(checkpoint)
        feat_dim = model_cfg.frontend.feat_dim
        if input_size != feat_dim:
            raise ValueError(f"encoder mslam: the checkpoint's encoder takes {feat_dim}-d fbank features, the "
                             f"ESPnet model gives it {input_size}-d input (use frontend: mslam_fbank, or "
                             f"frontend: null with input_size: {feat_dim} on mslam fbank dumps)")
        self.checkpoint = str(path)
        self.freeze_steps = int(freeze_steps)
        self.encoder = JointEncoder(model_cfg, with_text=False)
        load_weights(self.encoder, weights, path)
        mean, std, self.cmvn_path = self._cmvn(cmvn, config, feat_dim, path)
        self.register_buffer("cmvn_mean", mean)
        self.register_buffer("cmvn_std", std)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))
        log.info("mslam encoder from %s: d_model %d, %d parameters, CMVN %s, freeze_steps %d", path,
                 self.encoder.d_model, sum(p.numel() for p in self.encoder.parameters()),
                 self.cmvn_path or "none", self.freeze_steps)

    @staticmethod
    def _cmvn(cmvn, config: dict, dim: int, path: Path) -> tuple[torch.Tensor, torch.Tensor, str | None]:
        if cmvn is None or str(cmvn).lower() in ("none", "null", "false", ""):
            return torch.zeros(dim), torch.ones(dim), None
        if str(cmvn).lower() == "auto":
            stats_file = (config.get("data") or {}).get("cmvn")
            if not stats_file:
                return torch.zeros(dim), torch.ones(dim), None
            stats_path = Path((config.get("data") or {}).get("root") or ".") / stats_file
            if not stats_path.is_file():
                raise ConfigError(
                    f"encoder_conf cmvn: auto: {path} was pre-trained with global CMVN ({stats_path}), which is "
                    "not found from here; give the same cmvn.npz as encoder_conf cmvn: PATH (or cmvn: none)")
        else:
            stats_path = Path(cmvn)
            if not stats_path.is_file():
                raise ConfigError(f"encoder_conf cmvn: {cmvn}: no such file")
        stats = CMVNStats.load(stats_path)
        if stats.sum.shape[0] != dim:
            raise ConfigError(f"cmvn {stats_path}: {stats.sum.shape[0]}-d statistics for {dim}-d features")
        # The same float64 -> float32 values as CMVNStats.normalize uses.
        return (torch.as_tensor(stats.mean, dtype=torch.float32), torch.as_tensor(stats.std, dtype=torch.float32),
                str(stats_path))

    def output_size(self) -> int:
        return self.encoder.d_model

    def reload_pretrained_parameters(self) -> None:
        """ESPnet's `init:` re-initialises every parameter, then calls this: put the mslam weights back."""
        _, _, _, weights = read_checkpoint(self.checkpoint)
        load_weights(self.encoder, weights, Path(self.checkpoint))
        log.info("mslam encoder: pre-trained parameters reloaded from %s", self.checkpoint)

    def espnet_initialization_fn(self) -> None:  # the hook of ESPnet's `init: chainer`
        self.reload_pretrained_parameters()

    def frozen(self) -> bool:
        """Whether the next training forward runs with the encoder frozen."""
        return int(self.num_updates) < self.freeze_steps

    def forward(self, xs_pad: torch.Tensor, ilens: torch.Tensor, prev_states: torch.Tensor = None):
        feats = (xs_pad - self.cmvn_mean.to(xs_pad.dtype)) / self.cmvn_std.to(xs_pad.dtype)
        # Padding stays zero, as in mslam's batches (normalised per utterance, then padded).
        feats = feats.masked_fill(~lengths_to_valid(ilens, feats.shape[1])[..., None], 0.0)
        if not self.training:
            out, olens = self.encoder(feats, ilens)
            return out, olens, None
        frozen = self.frozen()
        self.num_updates += 1
        if not frozen:
            if self.freeze_steps and int(self.num_updates) == self.freeze_steps + 1:
                log.info("mslam encoder: %d frozen steps done; fine-tuning it from now on", self.freeze_steps)
            out, olens = self.encoder(feats, ilens)
            return out, olens, None
        self.encoder.eval()
        try:
            with torch.no_grad():
                out, olens = self.encoder(feats, ilens)
        finally:
            self.encoder.train()
        return out, olens, None
