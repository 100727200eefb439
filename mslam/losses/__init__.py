"""Pre-training and fine-tuning losses."""
from mslam.losses.ctc import ctc_loss
from mslam.losses.mlm import masked_cross_entropy
from mslam.losses.w2v_bert import Distractors, contrastive_loss, diversity_loss, gather_steps, sample_distractors

__all__ = ["ctc_loss", "masked_cross_entropy", "Distractors", "contrastive_loss", "diversity_loss",
           "gather_steps", "sample_distractors"]
