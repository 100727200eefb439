"""mslam: massively multilingual joint speech-text pre-training (mSLAM), as an ESPnet-style toolkit."""
from setuptools import find_packages, setup

setup(
    name="mslam",
    version="0.1.0",
    description="Joint speech-text Conformer pre-training (mSLAM) with Kaldi-style recipes",
    packages=find_packages(include=["mslam", "mslam.*"]),
    package_data={"mslam": ["conf/**/*.yaml", "data/corpora/*.tsv"]},
    python_requires=">=3.11,<3.12",
    # torch/torchaudio are pinned by the Makefile (one place: TORCH_VERSION), so that
    # installing this package never swaps the torch build underneath espnet.
    install_requires=[
        "torch",
        "torchaudio",
        "numpy",
        "pyyaml",
        "soundfile",
        "librosa",
        "kaldiio",
        "sentencepiece",
        "jiwer",
        "sacrebleu",
        "tqdm",
        "tensorboard",
        "matplotlib",
        "num2words",
    ],
    extras_require={
        "test": ["pytest"],
        "espnet": ["espnet==202511"],
        "bench": ["transformers"],  # Hugging Face's Wav2Vec2BertModel, the peer in bench/encoder.py
    },
)
