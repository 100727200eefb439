"""Front ends, Conformer blocks, the joint encoder, the quantiser, masking and the pre-training model."""
from mslam.model.encoder import EncoderConfig, FrontEndConfig, JointEncoder, ModelConfig
from mslam.model.masking import SpeechMaskConfig, SpeechSpanMasker, TextMaskConfig, TextSpanMasker
from mslam.model.pretrain import (ObjectiveConfig, PairedPart, PretrainBatch, PretrainModel, SpeechPart, TextPart,
                                  parameter_groups)
from mslam.model.quantizer import GumbelVectorQuantizer, QuantizerConfig

__all__ = ["EncoderConfig", "FrontEndConfig", "JointEncoder", "ModelConfig", "SpeechMaskConfig", "SpeechSpanMasker",
           "TextMaskConfig", "TextSpanMasker", "ObjectiveConfig", "PairedPart", "PretrainBatch", "PretrainModel",
           "SpeechPart", "TextPart", "parameter_groups", "GumbelVectorQuantizer", "QuantizerConfig"]
