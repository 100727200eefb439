"""Data preparation for the real corpora: download file lists and Kaldi data dirs per corpus."""
